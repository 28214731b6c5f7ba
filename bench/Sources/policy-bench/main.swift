// policy-bench: what a group's policy adds to lb's time per packet (issue 17; bench/policy.sh).
// The engine bench's data path (one group of 8 rings, a consumer on the other core, frames from
// memory), on the engine's three inputs, with no policy, a typical filter, slicing, both, and
// a tenant tag; runs of the cases alternate so that the guest's speed changes hit all alike.
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

struct Case { let name: String; let config: DispatchConfig }
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
             Case(name: "tenant tag (vni)", config: config(filter: false, slice: false, tenant: true))]

let inputs: [(String, [[UInt8]])] = [
    ("(a) 64-byte UDP", Traffic.udp64()),
    ("(b) trace mix", (try? Traffic.traces(["ssh/ssh.pcap", "irc-dcc-send.pcapng", "http/no_crlf.pcap"].map { corpus + "/" + $0 })) ?? []),
    ("(c) VXLAN", Traffic.vxlan()),
]
print("filter '\(expression)', slice \(sliceLength); \(packets) packets per run, median of \(repeats) runs; ns per packet (delta against no policy)")
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
            do {
                let r = try DataPathBench.run(set, geometry: .default, packets: packets, warmup: warmup, config: c.config)
                ns[i].append(Double(r.nanos) / Double(r.packets))
            } catch { print("\(error)"); exit(1) }
        }
    }
    let medians = ns.map { $0.sorted()[$0.count / 2] }
    print("\n\(label)")
    for (i, c) in cases.enumerated() {
        let delta = medians[i] - medians[0]
        print("  " + c.name.padding(toLength: 18, withPad: " ", startingAt: 0)
              + String(format: "%8.1f ns  %+7.1f ns  (runs %@)", medians[i], delta, ns[i].map { String(format: "%.1f", $0) }.joined(separator: " ")))
    }
}
