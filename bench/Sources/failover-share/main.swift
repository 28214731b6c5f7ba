// Share of flows that change rings when one worker of N fails and when it returns: lb's
// failover (BucketTables + Failover, the code lb runs) against hash mod N fan-out (what
// AF_PACKET fan-out and netmap lb do when a worker is removed). Deterministic: the flows are
// seeded random 64-bit flow hashes, so this measures placement, not speed.
//
//   swift run -c release --package-path bench failover-share [--rings 8] [--flows 1000000]
import Glibc
import LBBroker

func run() -> Int32 {
    var rings = 8
    var flows = 1_000_000
    var args = CommandLine.arguments.dropFirst()
    while let a = args.popFirst() {
        switch a {
        case "--rings": rings = Int(args.popFirst() ?? "") ?? rings
        case "--flows": flows = Int(args.popFirst() ?? "") ?? flows
        default:
            print("usage: failover-share [--rings N] [--flows F]")
            return 2
        }
    }

    struct SplitMix { var s: UInt64; mutating func next() -> UInt64 { s &+= 0x9E37_79B9_7F4A_7C15; var z = s; z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9; z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB; return z ^ (z >> 31) } }
    var rng = SplitMix(s: 42)
    let hashes = (0..<flows).map { _ in rng.next() }

    func snapshot(_ t: BucketTables) -> [Int] { (0..<BucketTables.buckets).map { t.ring(group: 0, bucket: $0) } }
    func share(_ a: [Int], _ b: [Int]) -> Double {
        var moved = 0
        for h in hashes { let k = BucketTables.bucket(h); if a[k] != b[k] { moved += 1 } }
        return Double(moved) / Double(flows)
    }

    var failShares: [Double] = [], returnShares: [Double] = [], spread: [Int] = []
    for victim in 0..<rings {
        let tables = BucketTables(groupSizes: [rings])
        let f = Failover(tables: tables)
        let before = snapshot(tables)
        var live = [Bool](repeating: true, count: rings)
        live[victim] = false
        f.apply(live: live)
        let failed = snapshot(tables)
        let counts = tables.bucketCounts(group: 0).enumerated().filter { $0.offset != victim }.map(\.element)
        spread.append(counts.max()! - counts.min()!)
        live[victim] = true
        f.apply(live: live)
        let back = snapshot(tables)
        failShares.append(share(before, failed))
        returnShares.append(share(failed, back))
    }
    var modMoved = 0
    for h in hashes where h % UInt64(rings) != h % UInt64(rings - 1) { modMoved += 1 }
    let modShare = Double(modMoved) / Double(flows)

    func pct(_ v: Double) -> String { let x = (v * 10000).rounded() / 100; return "\(x)%" }
    let target = 1.0 / Double(rings) + 0.02
    print("flows \(flows), rings \(rings), each ring failed and returned in turn")
    print("| event | lb failover (min / mean / max over the failed ring) | hash mod N | target |")
    print("| --- | ---: | ---: | ---: |")
    print("| one of \(rings) fails | \(pct(failShares.min()!)) / \(pct(failShares.reduce(0, +) / Double(rings))) / \(pct(failShares.max()!)) | \(pct(modShare)) (\(rings)→\(rings - 1)) | ≤ \(pct(target)) |")
    print("| it returns | \(pct(returnShares.min()!)) / \(pct(returnShares.reduce(0, +) / Double(rings))) / \(pct(returnShares.max()!)) | \(pct(modShare)) (\(rings - 1)→\(rings)) | ≤ \(pct(target)) |")
    print("buckets per live ring after a failure: max - min = \(spread.max()!) (of \(BucketTables.buckets))")
    let ok = failShares.max()! <= target && returnShares.max()! <= target
    print(ok ? "PASS: every share within 1/N + 2 points" : "FAIL: a share above 1/N + 2 points")
    return ok ? 0 : 1
}

exit(run())
