import Foundation
import LBCore

/// Runs frames through the real pipeline the corpus test uses: a pcap file, `lb -i pcap:FILE
/// -p w:3` and three `lb flowlog w:K` workers. Returns the union of the workers' conn.log
/// records (Zeek TSV parsed into field dictionaries) and the workers' standard error.
func flowlogThroughLB(_ name: String, _ frames: [(timestampNanos: UInt64, bytes: [UInt8])], linkType: UInt32 = 1,
                      likelyServerPorts: String = "standard", lbArgs: [String] = []) throws -> (records: [[String: String]], stderr: String) {
    let scratch = try ScratchDirectory("flowlog-" + name)
    let trace = scratch.path + "/trace.pcap"
    try Data(Pcap.file(linkType: linkType, nanosecond: true, packets: frames)).write(to: URL(fileURLWithPath: trace))
    let runDir = scratch.path + "/run"
    let lb = try Tool(Tool.lb, ["-i", "pcap:" + trace, "-p", "w:3", "-w", "60", "--run-dir", runDir] + lbArgs,
                      in: scratch.path, label: "lb")
    var workers: [Tool] = []
    for k in 0..<3 {
        workers.append(try Tool(Tool.lb, ["flowlog", "w:\(k)", "--run-dir", runDir, "--seed", "\(k + 1)",
                                          "--likely-server-ports", likelyServerPorts],
                                in: scratch.path, label: "flowlog\(k)"))
    }
    let status = try lb.wait(seconds: 120)
    guard status == 0 else { throw TestFailure("\(name): lb exited \(status): \(lb.stderr)") }
    var records: [[String: String]] = []
    var stderr = ""
    for (k, w) in workers.enumerated() {
        let s = try w.wait(seconds: 60)
        guard s == 0 else { throw TestFailure("\(name): flowlog w:\(k) exited \(s): \(w.stderr)") }
        records += ZeekLog(text: w.stdout).records
        stderr += w.stderr
    }
    return (records, stderr)
}

/// One conn.log record as the columns compared with Zeek, in the corpus test's order.
func connRow(_ r: [String: String]) -> String {
    ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "duration", "orig_bytes", "resp_bytes",
     "conn_state", "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "ip_proto"]
        .map { r[$0] ?? "?" }.joined(separator: " ")
}

/// Zeek's interval format (6 decimals) for a duration in nanoseconds.
func zeekInterval(_ ns: UInt64) -> String {
    let us = (ns + 500) / 1000
    let frac = String(us % 1_000_000)
    return "\(us / 1_000_000)." + String(repeating: "0", count: 6 - frac.count) + frac
}
