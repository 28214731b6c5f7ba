import Foundation
import Testing

/// The acceptance test of the core issue, for every case of the Zeek corpus:
/// `lb -i pcap:TRACE -p a:3 -p b:2 -p p:4` with five `lb cat` consumers and four unmodified
/// tcpdumps (`tcpdump -i lb:p:K -w K.pcap` through liblbpcap) started right after lb.
/// - each group's files together hold every packet of the trace (outer fragments that lb
///   reassembles and decapsulates count once, A-MSDU subframes count each, as lb reports);
/// - no flow appears in two files of one group (tshark names the flows, see PacketFlows);
/// - every inner connection that Zeek logs with tunnel_parents appears decapsulated;
/// - tcpdump reads every file; every tcpdump on a ring exits 0 at the end of the stream;
/// - group p (tcpdump) holds byte for byte the packets group a (lb cat) holds.
@Suite("Zeek corpus through lb")
struct CorpusTests {
    @Test("corpus case", arguments: Corpus.cases)
    func corpusCase(_ c: Corpus.Case) async throws {
        try Corpus.requirePresent()
        let result = try await TraceRuns.shared.result(for: c.tracePath)
        try result.check()
        try checkTunnelParents(c, result)
    }

    func checkTunnelParents(_ c: Corpus.Case, _ r: TraceResult) throws {
        guard FileManager.default.fileExists(atPath: c.baselinePath) else { return }
        let log = try ConnLog(path: c.baselinePath)
        guard log.hasIDs else { return }                  // a baseline without connection ids: informational
        let inner = log.conns.filter { $0.tunnelParents != "-" && $0.tunnelParents != "(empty)" && !$0.tunnelParents.isEmpty }
        for conn in inner {
            let flow = ConnLog.flow(conn)
            #expect(r.outermost["a"]?.contains(flow) == true,
                    "\(c.name): inner connection \(flow) (tunnel_parents \(conn.tunnelParents)) is not delivered decapsulated in group a")
            #expect(r.outermost["b"]?.contains(flow) == true,
                    "\(c.name): inner connection \(flow) is not delivered decapsulated in group b")
        }
    }
}

/// What one run of a trace produced. Cases that share a trace share the run.
struct TraceResult: Sendable {
    let trace: String
    let tracePackets: Int
    let received: Int
    let merged: Int
    let subframes: Int
    /// packets per group, from the files
    let groupPackets: [String: Int]
    /// flows found in more than one file of a group
    let splitFlows: [String: [String]]
    /// the first-IP-header flows per group
    let outermost: [String: Set<String>]
    /// group p (tcpdump through liblbpcap) holds the same records as group a (lb cat)
    let pcapMatchesCat: Bool

    func check() throws {
        #expect(received == tracePackets, "\(trace): lb received \(received) of \(tracePackets) packets")
        let expected = tracePackets - merged + subframes
        for (group, n) in groupPackets.sorted(by: { $0.key < $1.key }) {
            #expect(n == expected, "\(trace): group \(group) holds \(n) packets, expected \(expected) (trace \(tracePackets), merged \(merged), subframes \(subframes))")
        }
        #expect(pcapMatchesCat, "\(trace): tcpdump through liblbpcap wrote other packets than lb cat")
        for (group, flows) in splitFlows.sorted(by: { $0.key < $1.key }) where !flows.isEmpty {
            Issue.record("\(trace): group \(group): \(flows.count) flows split over rings, e.g. \(flows.prefix(3))")
        }
    }
}

actor TraceRuns {
    static let shared = TraceRuns()
    var runs: [String: Task<TraceResult, Error>] = [:]

    func result(for trace: String) async throws -> TraceResult {
        if let t = runs[trace] { return try await t.value }
        let t = Task.detached { try TraceRuns.run(trace) }
        runs[trace] = t
        return try await t.value
    }

    static func run(_ trace: String) throws -> TraceResult {
        let scratch = try ScratchDirectory((trace as NSString).lastPathComponent)
        var run = LBRun(dir: scratch.path, groups: [("a", 3), ("b", 2), ("p", 4)])
        run.pcapGroups = ["p"]
        try run.startLB(trace)
        try run.startConsumers()
        let stats = try run.finish()
        let tracePackets = try LBRun.count(trace, dir: scratch.path)

        var groupPackets: [String: Int] = [:]
        var split: [String: [String]] = [:]
        var outermost: [String: Set<String>] = [:]
        for group in ["a", "b", "p"] {
            let rings = run.rings.filter { $0.group == group }
            var perFile: [(LBRun.Ring, PacketFlows)] = []
            var firsts: [String: String] = [:]
            for r in rings {
                let file = run.files(r)[0]
                groupPackets[group, default: 0] += try LBRun.count(file, dir: scratch.path)
                let flows = try PacketFlows.read(file, in: scratch.path, label: "tshark-\(group)\(r.index)")
                firsts.merge(flows.firstFragments) { a, _ in a }
                perFile.append((r, flows))
            }
            var owner: [String: Int] = [:]
            var splitHere: Set<String> = []
            for (r, var flows) in perFile {
                flows.resolve(firsts)
                for f in Set(flows.flows) {
                    if let o = owner[f], o != r.index { splitHere.insert(f) } else { owner[f] = r.index }
                }
                outermost[group, default: []].formUnion(flows.outermost)
            }
            split[group] = splitHere.sorted()
        }
        // what tcpdump wrote through liblbpcap is what lb cat wrote, record for record (time,
        // lengths, bytes), over the group
        func records(_ group: String) throws -> [Pcap.Record] {
            try run.rings.filter { $0.group == group }.flatMap { try Pcap.records(run.files($0)[0]) }
        }
        let viaPcap = try records("p"), viaCat = try records("a")
        let sameRecords = Dictionary(viaPcap.map { ($0, 1) }, uniquingKeysWith: +) == Dictionary(viaCat.map { ($0, 1) }, uniquingKeysWith: +)
        return TraceResult(trace: trace, tracePackets: tracePackets, received: stats.int("packets_received"), merged: stats.int("fragments", "merged"),
                           subframes: stats.int("amsdu_subframes"), groupPackets: groupPackets, splitFlows: split,
                           outermost: outermost, pcapMatchesCat: sameRecords)
    }
}
