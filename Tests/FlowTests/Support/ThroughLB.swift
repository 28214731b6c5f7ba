import Foundation
import LBCore

/// A trace written by a test, split by lb and logged by flowlog workers: what an operator runs.
struct ThroughLB {
    /// conn.log records of every worker, and lb's final aggregate stats line
    var records: [[String: String]]
    var lbStats: [String: Any]

    /// Runs `lb -i pcap:TRACE -p w:WORKERS` with a `lb flowlog` per ring (`flowlogArgs` added).
    static func run(_ frames: [(timestampNanos: UInt64, bytes: [UInt8])], linkType: UInt32 = 1, workers: Int = 2,
                    flowlogArgs: [String] = [], lbArgs: [String] = [], tag: String) throws -> ThroughLB {
        let scratch = try ScratchDirectory("flow-" + tag)
        let trace = scratch.path + "/trace.pcap"
        try Data(Pcap.file(linkType: linkType, nanosecond: true, packets: frames)).write(to: URL(fileURLWithPath: trace))
        return try run(trace: trace, workers: workers, flowlogArgs: flowlogArgs, lbArgs: lbArgs, in: scratch)
    }

    static func run(trace: String, workers: Int = 2, flowlogArgs: [String] = [], lbArgs: [String] = [],
                    in scratch: ScratchDirectory) throws -> ThroughLB {
        let runDir = scratch.path + "/run"
        let lb = try Tool(Tool.lb, ["-i", "pcap:" + trace, "-p", "w:\(workers)", "-w", "60", "--run-dir", runDir] + lbArgs,
                          in: scratch.path, label: "lb")
        var tools: [Tool] = []
        for k in 0..<workers {
            tools.append(try Tool(Tool.lb, ["flowlog", "w:\(k)", "--run-dir", runDir] + flowlogArgs, in: scratch.path, label: "flowlog\(k)"))
        }
        guard try lb.wait(seconds: 120) == 0 else { throw TestFailure("lb: \(lb.stderr)") }
        var records: [[String: String]] = []
        for (k, t) in tools.enumerated() {
            guard try t.wait(seconds: 60) == 0 else { throw TestFailure("flowlog w:\(k): \(t.stderr)") }
            records += ZeekLog(text: t.stdout).records
        }
        var stats: [String: Any] = [:]
        for line in lb.stdout.split(separator: "\n") {
            if let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], o["output_ring"] is NSNull { stats = o }
        }
        return ThroughLB(records: records, lbStats: stats)
    }

    /// The records as rows of the given fields, sorted (for comparing with an expected list).
    func rows(_ fields: [String]) -> [String] {
        records.map { r in fields.map { r[$0] ?? "?" }.joined(separator: " ") }.sorted()
    }

    func stat(_ name: String) -> Int { (lbStats[name] as? NSNumber)?.intValue ?? -1 }
}
