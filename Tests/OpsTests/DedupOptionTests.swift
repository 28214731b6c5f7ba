import Foundation
import Testing

/// `--dedup WINDOW`: the units it takes (shown back as dedup_window_seconds) and the values it
/// refuses (a usage error, exit 64, before lb makes anything).
@Suite struct DedupOptionTests {
    @Test(arguments: [("on", 0.001), ("1ms", 0.001), ("500us", 0.0005), ("0.002", 0.002), ("2s", 2.0), ("250000ns", 0.00025)])
    func windows(_ text: String, _ seconds: Double) throws {
        let scratch = try Scratch("dedup-opt")
        let trace = try Ops.trace(in: scratch.path, packets: 10, flows: 2)
        let (s, out, err) = try Proc.run(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:1", "-w", "0", "--run-dir", scratch.path + "/run",
                                                  "--dedup", text], in: scratch.path, label: "lb", seconds: 30)
        #expect(s == 0, "\(err)")
        #expect(out.contains("\"dedup_window_seconds\":\(seconds)"), "\(text): \(out)")
    }

    @Test(arguments: ["bogus", "0", "20s", "0.5us", "1h", ""])
    func refused(_ text: String) throws {
        let scratch = try Scratch("dedup-opt-bad")
        let (s, _, err) = try Proc.run(Ops.lb, ["-i", "pcap:x", "--dedup", text], in: scratch.path, label: "lb")
        #expect(s == 64 && err.contains("--dedup"), "\(text): exit \(s): \(err)")
    }
}
