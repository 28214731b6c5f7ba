import Foundation
import Testing

@Suite struct CLITests {
    @Test func versionIsPrinted() throws {
        let scratch = try Scratch("cli")
        let (s, out, _) = try Proc.run(Ops.lb, ["--version"], in: scratch.path, label: "version")
        #expect(s == 0)
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3, "\(out)")
    }

    /// The input is opened before any ring or socket exists: a missing file stops lb at once
    /// and leaves no socket for consumers to wait on.
    @Test func aBadInputLeavesNoSocket() throws {
        let scratch = try Scratch("cli-badinput")
        let runDir = scratch.path + "/run"
        let (s, _, err) = try Proc.run(Ops.lb, ["-i", "pcap:" + scratch.path + "/missing.pcap", "-p", "a:2", "--run-dir", runDir],
                                       in: scratch.path, label: "lb")
        #expect(s == 1 && err.contains("missing.pcap"), "\(err)")
        #expect(!FileManager.default.fileExists(atPath: runDir + "/a.sock"))
    }

    /// Rings the host cannot hold are refused before any is made (they are pre-faulted).
    @Test func ringsLargerThanTheHostAreRefused() throws {
        let scratch = try Scratch("cli-memory")
        let trace = try Ops.trace(in: scratch.path, packets: 10, flows: 2)
        let (s, _, err) = try Proc.run(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:64", "--ring-size", "1G", "--run-dir", scratch.path + "/run"],
                                       in: scratch.path, label: "lb", seconds: 30)
        #expect(s == 1 && err.contains("the host has") && err.contains("available"), "\(err)")
    }
}
