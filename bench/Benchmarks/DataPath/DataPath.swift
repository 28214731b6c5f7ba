// lb's data path under ordo-one/benchmark: the same sessions as lb-bench (capture in memory ->
// decode -> hash -> 8 rings, consumer thread on CPU 1), one million packets per iteration, so
// every metric is reported per packet (scalingFactor .mega). mallocCountTotal must be 0.
// (No ARC metrics: on Linux with Swift 6.3 their runtime hooks crash without the
// RuntimeInterposer trait, whose package is not available here.)
//
//   swift package --package-path bench benchmark --target DataPath
//
// The C yardstick and the table with ratios are lb-bench's (run.sh).

import Benchmark
import BenchKit
import LBRing

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .freeCountTotal],
        warmupIterations: 2,
        scalingFactor: .mega,
        maxDuration: .seconds(10),
        maxIterations: 20)

    let inputs: [(String, () -> [[UInt8]])] = [
        ("udp64", { Traffic.udp64() }),
        ("vxlan", { Traffic.vxlan() }),
    ]
    for (name, make) in inputs {
        for (gname, geometry) in [("default", RingGeometry.default), ("small", DataPathBench.smallGeometry)] {
            let box = SessionBox()
            Benchmark("DataPath \(name) \(gname) rings") { (benchmark: Benchmark, session: Session) in
                session.pin()
                benchmark.startMeasurement()
                session.run(packets: benchmark.scaledIterations.count)
                benchmark.stopMeasurement()
            } setup: {
                let path = "/tmp/lb-bench-\(name).pcap"
                try Traffic.writePcap(make(), to: path)
                let set = try FrameSet(pcap: path)
                let session = try Session(set, geometry: geometry)
                session.run(packets: DataPathBench.warmupPackets(set, geometry: geometry, minimum: 2_000_000))
                box.session = session
                return session
            } teardown: {
                _ = box.session?.finish()       // the consumer thread stops spinning on CPU 1
                box.session = nil
            }
        }
    }
}

/// Lets teardown reach the session that setup made.
final class SessionBox: @unchecked Sendable {
    var session: Session?
}
