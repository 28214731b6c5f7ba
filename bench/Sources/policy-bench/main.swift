// policy-bench: what a group's policy adds to lb's time per packet (issue 17; bench/policy.sh).
// The engine bench's data path (one group of 8 rings, a consumer on the other core, frames from
// memory), on the engine's three inputs, with no policy, a typical filter, slicing, both, a
// tenant tag and --dedup 1ms; runs of the cases alternate so that the guest's speed changes hit
// all alike. Every case shifts each cycle over the frames past the last one in packet time
// (DataPathBench.newCycles), so that with dedup every packet is new and checked in full, and
// the cases without it pay the same shift.
//
//   policy-bench CORPUS_TRACES_DIR [--packets N] [--repeat N] [--filter EXPR] [--slice N]

import BenchKit
import Foundation
import LBBroker
import LBCore

var args = CommandLine.arguments.dropFirst()
guard let corpus = args.popFirst() else { print("usage: policy-bench CORPUS_TRACES_DIR [--packets N] [--repeat N] [--filter EXPR] [--slice N]"); exit(2) }
var packets = 2_000_000, repeats = 5, expression = "not (tcp port 443)", sliceLength = 128
while let a = args.popFirst() {
    switch a {
    case "--packets": packets = Int(args.popFirst() ?? "") ?? packets
    case "--repeat": repeats = Int(args.popFirst() ?? "") ?? repeats
    case "--filter": expression = args.popFirst() ?? expression
    case "--slice": sliceLength = Int(args.popFirst() ?? "") ?? sliceLength
    default: print("unknown option \(a)"); exit(2)
    }
}

struct Case { let name: String; let config: DispatchConfig; var dedupNanos: UInt64 = 0 }
@MainActor func config(filter: Bool, slice: Bool, tenant: Bool = false) -> DispatchConfig {
    var c = DispatchConfig()
    if filter || slice {
        c.policies = [GroupPolicy(filter: filter ? try! PacketFilter(expression) : nil, slice: slice ? sliceLength : 0)]
    }
    if tenant { c.tenantTag = TenantTag(source: .vni) }
    return c
}
let cases = [Case(name: "no policy", config: config(filter: false, slice: false)),
             Case(name: "filter", config: config(filter: true, slice: false)),
             Case(name: "slice \(sliceLength)", config: config(filter: false, slice: true)),
             Case(name: "filter + slice", config: config(filter: true, slice: true)),
             Case(name: "tenant tag (vni)", config: config(filter: false, slice: false, tenant: true)),
             Case(name: "dedup 1ms", config: config(filter: false, slice: false), dedupNanos: 1_000_000)]
DataPathBench.newCycles = true

let inputs: [(String, [[UInt8]])] = [
    ("(a) 64-byte UDP", Traffic.udp64()),
    ("(b) trace mix", (try? Traffic.traces(["ssh/ssh.pcap", "irc-dcc-send.pcapng", "http/no_crlf.pcap"].map { corpus + "/" + $0 })) ?? []),
    ("(c) VXLAN", Traffic.vxlan()),
]
print("filter '\(expression)', slice \(sliceLength); \(packets) packets per run, median of \(repeats) runs; ns per packet; added: median over the repeats of the case minus no policy in the same repeat; dedup: 0 packets deduplicated in every run")
for (label, frames) in inputs {
    guard !frames.isEmpty else { print("\(label): no frames (corpus at \(corpus)?)"); exit(1) }
    let path = "/tmp/policy-bench-\(label.prefix(3).filter(\.isLetter)).pcap"
    do { try Traffic.writePcap(frames, to: path) } catch { print("\(error)"); exit(1) }
    let set: FrameSet
    do { set = try FrameSet(pcap: path) } catch { print("\(error)"); exit(1) }
    let warmup = DataPathBench.warmupPackets(set, geometry: .default, minimum: 500_000)
    var ns = [[Double]](repeating: [], count: cases.count)
    for _ in 0..<repeats {
        for (i, c) in cases.enumerated() {
            DataPathBench.dedupWindowNanos = c.dedupNanos
            do {
                let r = try DataPathBench.run(set, geometry: .default, packets: packets, warmup: warmup, config: c.config)
                if r.deduplicated != 0 { print("\(c.name): \(r.deduplicated) packets deduplicated (the cycles should all be new)"); exit(1) }
                ns[i].append(Double(r.nanos) / Double(r.packets))
            } catch { print("\(error)"); exit(1) }
        }
    }
    // the guest's speed is bimodal (bench/README, Machine) and can change between repeats: the
    // added time is the median of each repeat's own difference (a case against the no-policy
    // run of the same repeat), and the fastest run of each case is shown beside its median
    let medians = ns.map { $0.sorted()[$0.count / 2] }
    print("\n\(label)")
    for (i, c) in cases.enumerated() {
        let deltas = (0..<repeats).map { ns[i][$0] - ns[0][$0] }.sorted()
        print("  " + c.name.padding(toLength: 18, withPad: " ", startingAt: 0)
              + String(format: "median %6.1f ns  fastest %6.1f ns  added %+6.1f ns  (runs %@)", medians[i], ns[i].min()!,
                       deltas[deltas.count / 2], ns[i].map { String(format: "%.1f", $0) }.joined(separator: " ")))
    }
}
