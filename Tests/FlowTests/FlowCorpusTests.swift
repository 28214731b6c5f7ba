import Foundation
import LBFlow
import Testing

/// The acceptance test of `lb flowlog`: for every case of the Zeek corpus,
/// `lb -i pcap:TRACE -p w:3` with three `lb flowlog w:K` workers, run with the index's flags
/// and its `likely_server_ports` column; the union of their conn.log records is compared with
/// Zeek's baseline on the fields zeek-corpus/README.md lists that the baseline has.
/// - every case equals Zeek's conn.log, except those README.md lists as not comparable (Zeek's
///   scripts shaped them), with one line of reason each; a listed case that matches is reported,
///   so the list stays true;
/// - `-f` runs (Zeek read through a capture filter) are informational;
/// - no connection appears in two workers' logs.
///
/// Zeek's outer tunnel connections (uids named in tunnel_parents; service vxlan, geneve,
/// gtpv1, teredo, ayiya; and UDP connections to the tunnel ports lb decapsulates by default)
/// are left out of both sides: lb strips that encapsulation.
@Suite("Zeek corpus through lb flowlog")
struct FlowCorpusTests {
    static let compared = ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "conn_state", "history",
                           "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "duration", "orig_bytes",
                           "resp_bytes", "missed_bytes"]
    static let tunnelServices: Set<String> = ["vxlan", "geneve", "gtpv1", "teredo", "ayiya"]
    static let tunnelPorts: Set<String> = ["4789", "6081", "2152", "3544", "5072", "4754"]

    struct Outcome {
        var name: String
        var comparable: Bool
        var matched: Bool
        var detail: String
        var duplicates: [String]
    }

    @Test("conn.log from three workers equals Zeek's baseline")
    func corpus() throws {
        try Corpus.requirePresent()
        let listed = try NotComparable.load()
        var outcomes: [Outcome] = []
        for c in Corpus.cases {
            outcomes.append(try run(c))
        }
        for name in listed.keys where !Corpus.cases.contains(where: { $0.name == name }) {
            Issue.record("README.md lists \(name), which is not a corpus case")
        }
        for o in outcomes where !o.duplicates.isEmpty {
            Issue.record("\(o.name): connections in two workers' logs: \(o.duplicates.prefix(3))")
        }
        let compared = outcomes.filter { $0.comparable && listed[$0.name] == nil }
        for o in compared where !o.matched {
            Issue.record("\(o.name) differs from Zeek:\n\(o.detail)")
        }
        for o in outcomes where o.comparable && o.matched && listed[o.name] != nil {
            Issue.record("\(o.name) now equals Zeek: remove it from README.md's list of cases not compared")
        }
        let matched = compared.filter(\.matched).count
        for o in outcomes where !o.comparable && listed[o.name] == nil {
            Issue.record("\(o.name) is not compared (Zeek ran it with -f): README.md's list must name it")
        }
        print("flowlog corpus: \(matched) of \(compared.count) compared cases equal Zeek's conn.log; \(listed.count) listed as not comparable (Zeek's scripts or -f)")
        #expect(compared.count >= 50, "too few compared cases: \(compared.count)")
    }

    func run(_ c: Corpus.Case) throws -> Outcome {
        let baseline = try ZeekLog(path: c.baselinePath)
        let fields = Self.compared.filter { baseline.fields.contains($0) }
        let informational = fields.isEmpty || c.zeekFlags.contains("-f")
        // Zeek's view of the encapsulation lb strips
        var parents: Set<String> = []
        for r in baseline.records {
            let tp = r["tunnel_parents"] ?? "-"
            if tp != "-" && tp != "(empty)" { parents.formUnion(tp.split(separator: ",").map(String.init)) }
        }
        func isTunnel(_ r: [String: String]) -> Bool {
            parents.contains(r["uid"] ?? "") || Self.tunnelServices.contains(r["service"] ?? "-")
                || (r["proto"] == "udp" && Self.tunnelPorts.contains(r["id.resp_p"] ?? ""))
        }
        let tunnels = baseline.records.filter(isTunnel)
        let tunnelKeys = Set(tunnels.map(ZeekLog.flowKey))
        let expected = baseline.records.filter { !isTunnel($0) }
        let likely = c.likelyServerPorts

        let scratch = try ScratchDirectory("flowlog-" + c.name)
        let runDir = scratch.path + "/run"
        let lb = try Tool(Tool.lb, ["-i", "pcap:" + c.tracePath, "-p", "w:3", "-w", "60", "--run-dir", runDir],
                          in: scratch.path, label: "lb")
        var workers: [Tool] = []
        for k in 0..<3 {
            var args = ["flowlog", "w:\(k)", "--run-dir", runDir, "--seed", "\(k + 1)", "--likely-server-ports", likely]
            if c.zeekFlags.contains("-C") { args.append("-C") }
            workers.append(try Tool(Tool.lb, args, in: scratch.path, label: "flowlog\(k)"))
        }
        let status = try lb.wait(seconds: 120)
        guard status == 0 else { throw TestFailure("\(c.name): lb exited \(status): \(lb.stderr)") }
        var logs: [ZeekLog] = []
        for (k, w) in workers.enumerated() {
            let s = try w.wait(seconds: 60)
            guard s == 0 else { throw TestFailure("\(c.name): flowlog w:\(k) exited \(s): \(w.stderr)") }
            logs.append(ZeekLog(text: w.stdout))
        }
        // no connection in two workers' logs
        var owner: [String: Int] = [:]
        var duplicates: [String] = []
        for (k, log) in logs.enumerated() {
            for r in log.records {
                let key = ZeekLog.flowKey(r)
                if let o = owner[key], o != k { duplicates.append(key) } else { owner[key] = k }
            }
        }
        if informational {
            return Outcome(name: c.name, comparable: false, matched: false, detail: "", duplicates: duplicates)
        }
        let ours = logs.flatMap(\.records).filter {
            !tunnelKeys.contains(ZeekLog.flowKey($0)) && !tunnelKeys.contains(ZeekLog.reverseKey($0))
        }
        func row(_ r: [String: String]) -> String { fields.map { r[$0] ?? "?" }.joined(separator: " ") }
        var want: [String: Int] = [:], got: [String: Int] = [:]
        for r in expected { want[row(r), default: 0] += 1 }
        for r in ours { got[row(r), default: 0] += 1 }
        var detail = ""
        for (k, n) in want.sorted(by: { $0.key < $1.key }) where got[k, default: 0] < n { detail += "  zeek: \(k)\n" }
        for (k, n) in got.sorted(by: { $0.key < $1.key }) where want[k, default: 0] < n { detail += "  ours: \(k)\n" }
        return Outcome(name: c.name, comparable: true, matched: detail.isEmpty, detail: detail, duplicates: duplicates)
    }
}
