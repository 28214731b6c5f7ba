// shunt-bench: what a shunted packet costs lb against a delivered one, and what a large shunt
// table costs every packet (issue 16). One group of 8 rings, a consumer draining them on the
// other core (BenchKit), the trace in memory:
//   delivered       no shunt at all (every packet written into a ring)
//   shunted         every flow of the trace shunted (its SYN/FIN/RST still delivered)
//   big-delivered   1,000,000 other flows in the table, the trace's flows not
//   big-shunted     1,000,000 other flows and the trace's flows in the table
//
// and with --xdp OBJECT, lb's XDP program in the kernel (BPF_PROG_TEST_RUN, the kernel's own
// timing): ns per frame with no shunt (the frame goes on to lb) and with every flow of the trace
// in its shunt map (dropped there, lb never sees it).
//
//   shunt-bench TRACE.pcap [--packets N] [--repeat N] [--xdp lb_xdp.o]

import BenchKit
import Foundation
import LBBroker
import LBCore
import LBRing
import LBSys

var args = CommandLine.arguments.dropFirst()
guard let tracePath = args.popFirst() else { print("usage: shunt-bench TRACE.pcap [--packets N] [--repeat N]"); exit(2) }
var packets = 2_000_000, repeats = 5
var xdpObject: String? = nil
while let a = args.popFirst() {
    switch a {
    case "--xdp": xdpObject = args.popFirst()
    case "--packets": packets = Int(args.popFirst() ?? "") ?? packets
    case "--repeat": repeats = Int(args.popFirst() ?? "") ?? repeats
    default: print("unknown option \(a)"); exit(2)
    }
}

let set: FrameSet
do { set = try FrameSet(pcap: tracePath) } catch { print("\(error)"); exit(1) }
let decoder = Decoder()
var rules: [ShuntTable.Rule] = []
var seen: Set<String> = []
for i in 0..<set.count {
    let d = decoder.decode(set.frames[i].bytes, link: .ethernet)
    guard d.key.kind == .ports else { continue }
    let r = ShuntTable.Rule(key: d.key)
    let id = "\(r.a.hi),\(r.a.lo),\(r.a.port),\(r.b.hi),\(r.b.lo),\(r.b.port),\(r.proto)"
    if seen.insert(id).inserted { rules.append(r) }
}
/// Flows no packet of the trace belongs to (198.18.0.0/15 to 198.19.x.x, TCP).
func otherRule(_ i: Int) -> ShuntTable.Rule {
    ShuntTable.Rule(src: .init(hi: 0, lo: 0xFFFF_C612_0000 | UInt64(i & 0xFFFF), port: UInt16(1024 + i >> 16)),
                    dst: .init(hi: 0, lo: 0xFFFF_C613_0001, port: 443), proto: 6)
}

struct Result { var name: String; var ns: [Double]; var forwarded: UInt64; var shunted: UInt64 }

@MainActor func session(_ name: String, shunt: [ShuntTable.Rule], others: Int) throws -> Result {
    try Threads.pin(cpu: 0)
    let rings = try BenchRings(rings: DataPathBench.rings, geometry: .default, consumerCPU: 1)
    let channel = ShuntChannel(groupCount: 1, commandCapacity: 4096)
    rings.shared.shuntChannels = [channel]
    var config = DispatchConfig()
    config.backpressure = false
    config.endShuntsAtEnd = false
    config.shuntCapacity = max(65536, others + shunt.count + 1024)
    var dispatcher = Dispatcher(config: config, groups: [rings.memories], shared: rings.shared)
    // the requests go in 4096 at a time, each batch applied by a run of no packets
    let all = (0..<others).lazy.map(otherRule) + shunt
    var batch: [ShuntTable.Rule] = []
    func flush() {
        for r in batch { _ = channel.send(.init(op: .add, group: 0, rule: r, token: 0)) }
        var none = ReplaySource(set, packets: 0)
        dispatcher.run(&none)
        while channel.receive() != nil {}
        batch.removeAll(keepingCapacity: true)
    }
    for r in all {
        batch.append(r)
        if batch.count == 4096 { flush() }
    }
    flush()
    var position = 0
    func run(_ n: Int) -> UInt64 {
        var source = ReplaySource(set, packets: n, start: position)
        let t0 = Sys.monoNanos()
        dispatcher.run(&source)
        let t1 = Sys.monoNanos()
        position = source.position
        return t1 - t0
    }
    _ = run(packets)                                    // warm-up: caches, ring pages
    var ns: [Double] = []
    for _ in 0..<repeats { ns.append(Double(run(packets)) / Double(packets)) }
    let forwarded = rings.total(.forwarded), shunted = rings.total(.shunted)
    _ = rings.finish()
    return Result(name: name, ns: ns.sorted(), forwarded: forwarded, shunted: shunted)
}

print("trace: \(set.count) frames, \(rules.count) TCP/UDP flows; \(packets) packets per run, \(repeats) runs, median shown")
var results: [Result] = []
do {
    results.append(try session("delivered", shunt: [], others: 0))
    results.append(try session("shunted", shunt: rules, others: 0))
    results.append(try session("big-delivered", shunt: [], others: 1_000_000))
    results.append(try session("big-shunted", shunt: rules, others: 1_000_000))
} catch {
    print("shunt-bench: \(error)")
    exit(1)
}
let base = results[0].ns[results[0].ns.count / 2]
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
print(pad("case", 14) + lpad("ns/packet", 10) + lpad("vs delivered", 14) + lpad("forwarded", 12) + lpad("shunted", 12))
for r in results {
    let m = r.ns[r.ns.count / 2]
    print(pad(r.name, 14) + lpad(String(format: "%.1f", m), 10) + lpad(String(format: "%.2f", m / base), 14)
          + lpad("\(r.forwarded)", 12) + lpad("\(r.shunted)", 12))
}


/// lb's XDP program on the trace's first frames (up to 512, each run 20,000 times in the
/// kernel): mean ns per frame, and how many it dropped.
func xdpTime(_ prog: XDPProgram) throws -> (ns: Double, dropped: Int, frames: Int) {
    let n = min(set.count, 512)
    var total = 0.0, dropped = 0
    for i in 0..<n {
        let t = try prog.time(Array(set.frames[i].bytes), repeat: 20_000)
        total += Double(t.ns)
        if t.action == .drop { dropped += 1 }
    }
    return (total / Double(n), dropped, n)
}

if let xdpObject {
    do {
        let prog = try XDPProgram(object: xdpObject, divert: nil)
        let before = try xdpTime(prog)
        for r in rules { try prog.shunt(r) }
        let after = try xdpTime(prog)
        let delivered = base + before.ns
        print("")
        print("lb's XDP program (BPF_PROG_TEST_RUN, the trace's first \(before.frames) frames, 20,000 runs each):")
        print(pad("case", 30) + lpad("ns/frame", 10) + lpad("dropped", 10))
        print(pad("no shunt (on to lb)", 30) + lpad(String(format: "%.1f", before.ns), 10) + lpad("\(before.dropped)", 10))
        print(pad("every flow shunted", 30) + lpad(String(format: "%.1f", after.ns), 10) + lpad("\(after.dropped)", 10))
        print("a shunted packet dropped by the program costs \(String(format: "%.1f", after.ns)) ns against "
              + "\(String(format: "%.1f", delivered)) ns for a delivered one (the program's \(String(format: "%.1f", before.ns)) "
              + "+ lb's \(String(format: "%.1f", base))): ratio \(String(format: "%.3f", after.ns / delivered)); "
              + "lb's own threads spend nothing on it (the kernel's copy into the UMEM, saved too, is not counted)")
    } catch {
        print("shunt-bench: XDP: \(error)")
        exit(1)
    }
}
