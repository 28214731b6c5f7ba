import Foundation
import LBCore
import LBFlow
import LBGen
import Testing

/// Capture loss with a known truth: a trace of TCP connections in which every client data
/// segment is acknowledged by the server, with every 10th data segment removed (as if the tap
/// lost it; the server's ACK for it stays). Zeek's estimate (ACKs that reveal missing data, out
/// of ACKs that advance) must agree with the fraction removed within 2 percentage points —
/// in-process, and through lb with three flowlog workers that report it back to lb.
@Suite("Capture loss")
struct CaptureLossTests {
    /// The trace, and the percentage of data segments removed.
    static func lossyTrace(connections: Int = 30, segments: Int = 100, dropEvery: Int = 10)
        -> (frames: [(timestampNanos: UInt64, bytes: [UInt8])], truthPercent: Double, dataSegments: Int) {
        var frames: [(timestampNanos: UInt64, bytes: [UInt8])] = []
        var dataSeen = 0, dropped = 0
        for i in 0..<connections {
            var c = Conversation(client: IPv4(10, 1, UInt8(i / 200), UInt8(i % 200 + 1)), server: "10.2.0.1",
                                 cport: UInt16(20000 + i), sport: 8080,
                                 ts: 1_700_000_000_000_000_000 + UInt64(i) * 1_000_000)
            c.handshake()
            for _ in 0..<segments {
                c.dataFromClient(512)
                c.ackFromServer()
            }
            c.close()
            for (k, f) in c.frames.enumerated() {
                if c.labels[k] == "D" {
                    dataSeen += 1
                    if dataSeen % dropEvery == 0 { dropped += 1; continue }
                }
                frames.append(f)
            }
        }
        frames.sort { $0.timestampNanos < $1.timestampNanos }
        return (frames, 100 * Double(dropped) / Double(dataSeen), dataSeen)
    }

    @Test("the in-process estimate equals the fraction of data segments removed")
    func inProcess() {
        let t = Self.lossyTrace()
        let (_, table) = track(t.frames)
        let estimate = 100 * Double(table.loss.gaps) / Double(table.loss.acks)
        #expect(abs(estimate - t.truthPercent) <= 2, "estimate \(estimate)% vs truth \(t.truthPercent)%")
        #expect(table.loss.acks >= UInt64(t.dataSegments) * 9 / 10)
        // and without loss, no gaps
        let clean = Self.lossyTrace(dropEvery: Int.max)
        #expect(track(clean.frames).table.loss.gaps == 0)
    }

    @Test("three flowlog workers behind lb report the loss within 2 points, and lb shows their reports")
    func throughLB() throws {
        let t = Self.lossyTrace()
        let scratch = try ScratchDirectory("flowlog-loss")
        let trace = scratch.path + "/lossy.pcap"
        let bytes = Pcap.file(linkType: 1, nanosecond: false, packets: t.frames)
        try Data(bytes).write(to: URL(fileURLWithPath: trace))
        let runDir = scratch.path + "/run"
        let lb = try Tool(Tool.lb, ["-i", "pcap:" + trace, "-p", "w:3", "-w", "60", "--run-dir", runDir],
                          in: scratch.path, label: "lb")
        var workers: [Tool] = []
        for k in 0..<2 {
            workers.append(try Tool(Tool.lb, ["flowlog", "w:\(k)", "--run-dir", runDir, "--loss-log",
                                              scratch.path + "/loss\(k).log", "--loss-interval", "0.05"],
                                    in: scratch.path, label: "flowlog\(k)"))
        }
        // the third writes JSON into a directory
        workers.append(try Tool(Tool.lb, ["flowlog", "w:2", "--run-dir", runDir, "--json", "-d", scratch.path + "/w2",
                                          "--loss-interval", "0.05"], in: scratch.path, label: "flowlog2"))
        let status = try lb.wait(seconds: 120)
        #expect(status == 0, "lb: \(lb.stderr)")
        var gaps = 0, acks = 0, records = 0
        var processed: [Int] = []
        for (k, w) in workers.enumerated() {
            #expect(try w.wait(seconds: 60) == 0, "flowlog w:\(k): \(w.stderr)")
            var lossRecords: [[String: String]]
            if k < 2 {
                let log = try ZeekLog(path: scratch.path + "/loss\(k).log")
                #expect(log.fields == CaptureLoss.fields)
                lossRecords = log.records
            } else {
                lossRecords = try jsonLines(scratch.path + "/w2/capture_loss.log")
                let conns = try jsonLines(scratch.path + "/w2/conn.log")
                #expect(!conns.isEmpty && conns.allSatisfy { $0["proto"] == "tcp" && $0["conn_state"] == "SF" })
            }
            for r in lossRecords {
                gaps += Int(r["gaps"] ?? "") ?? 0
                acks += Int(r["acks"] ?? "") ?? 0
                records += 1
                #expect(r["peer"] == "w:\(k)")
            }
            // "lb flowlog: w:K: N packets, ..." on standard error
            let words = w.stderr.split(separator: " ")
            if let i = words.firstIndex(of: "packets,"), i > 0, let n = Int(words[i - 1]) { processed.append(n) }
        }
        #expect(records >= 6, "expected several capture_loss.log records (interval 0.05 s of packet time over a 0.23 s trace)")
        #expect(acks > 0)
        let estimate = 100 * Double(gaps) / Double(max(acks, 1))
        #expect(abs(estimate - t.truthPercent) <= 2, "estimate \(estimate)% (\(gaps)/\(acks)) vs truth \(t.truthPercent)%")

        // lb's final per-ring stats carry each worker's report from the ring's control area
        let rings = try finalRingStats(lb.stdout)
        #expect(rings.count == 3)
        #expect(processed.count == 3)
        var reportedGaps = 0, reportedAcks = 0
        for k in 0..<3 {
            guard let r = rings["w:\(k)"] else { Issue.record("no stats line for ring w:\(k)"); continue }
            #expect((r["consumer_packets_processed"] as? Int) == processed[safe: k], "ring w:\(k): \(r)")
            guard let g = r["worker_loss_gaps"] as? Int, let a = r["worker_loss_acks"] as? Int else {
                Issue.record("ring w:\(k): no worker_loss_gaps/worker_loss_acks in lb's stats: \(r)")
                continue
            }
            reportedGaps += g
            reportedAcks += a
        }
        #expect(reportedGaps == gaps && reportedAcks == acks, "lb shows \(reportedGaps)/\(reportedAcks), logs say \(gaps)/\(acks)")
    }

    /// JSON lines as string dictionaries (numbers as their text).
    func jsonLines(_ path: String) throws -> [[String: String]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return obj.mapValues { "\($0)" }
        }
    }

    func finalRingStats(_ stdout: String) throws -> [String: [String: Any]] {
        var rings: [String: [String: Any]] = [:]
        for line in stdout.split(separator: "\n") {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  !(obj["output_ring"] is NSNull), let name = obj["interface"] as? String else { continue }
            rings[name] = obj       // the last line per ring is the final one
        }
        return rings
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { i >= 0 && i < count ? self[i] : nil }
}
