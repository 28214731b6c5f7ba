import Foundation
import Glibc
import LBBroker
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

    /// Every typed option value: a bad one is ArgumentParser's own usage error naming the
    /// option (exit 64), before lb makes anything.
    @Test(arguments: [
        (["-i", "pcap:x", "-p", "zeek:0"], "-p <pipes>"),
        (["-i", "pcap:x", "-p", "../x:2"], "-p <pipes>"),
        (["-i", "pcap:x", "--ring-size", "12Q"], "--ring-size"),
        (["-i", "nosuch0"], "-i <input>"),
        (["-i", "udp::1.2.3.4"], "-i <input>"),
        (["-i", "af_xdp:eth0@a"], "-i <input>"),
        (["-i", "pcap:x", "--failover", "soon"], "--failover"),
        (["-i", "pcap:x", "--metrics", "1.2.3.4:99999"], "--metrics"),
        (["-i", "pcap:x", "--decap", "peel"], "--decap"),
        (["-i", "pcap:x", "--hash", "4"], "--hash"),
        (["-i", "pcap:x", "--tunnel-port", "vxlan:0"], "--tunnel-port"),
        (["-i", "pcap:x", "-b", "0"], "-b"),
        (["-i", "pcap:x", "-o", "soon"], "-o"),
        (["-i", "pcap:x", "--max-depth", "33"], "--max-depth"),
        (["-i", "pcap:x", "--stall-timeout", "0"], "--stall-timeout"),
        (["-i", "pcap:x", "--xdp-frames", "1000"], "--xdp-frames"),
        (["-i", "pcap:x", "--cpus", "1,x"], "--cpus"),
        (["-i", "pcap:x", "--divert", "port"], "--divert"),
        (["-i", "pcap:x", "--xdp-mode", "fast"], "--xdp-mode"),
        (["cat", "zeek"], "<ring>"),
        (["flowlog", "w:0", "--likely-server-ports", "nonsense/xyz"], "--likely-server-ports"),
        (["gen", "-w", "x.pcap", "--sizes", "10-20"], "--sizes"),
        (["gen", "-w", "x.pcap", "--mode", "all"], "--mode"),
        (["stats", "--interval", "0"], "--interval"),
    ])
    func badValuesAreUsageErrors(_ args: [String], _ option: String) throws {
        let scratch = try Scratch("cli-usage")
        let (s, _, err) = try Proc.run(Ops.lb, args, in: scratch.path, label: "usage")
        #expect(s == 64, "\(args): exit \(s): \(err)")
        #expect(err.contains("is invalid for '\(option)") || err.contains("is invalid for '\(option) <"), "\(args): \(err)")
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/x.pcap"))
    }

    /// The spellings users know still work: sizes with suffixes, `NAME:` for two rings, a bare
    /// count named after the input, failover off, a tunnel port.
    @Test func goodValuesStillWork() throws {
        let scratch = try Scratch("cli-good")
        let trace = try Ops.trace(in: scratch.path, packets: 200, flows: 20)
        let runDir = scratch.path + "/run"
        let (s, out, err) = try Proc.run(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:", "-p", "3", "--ring-size", "4M", "--ring-slots", "4096",
                                                  "--failover", "off", "--tunnel-port", "vxlan:8472", "--decap", "keep", "--hash", "3",
                                                  "-w", "0", "--run-dir", runDir, "--metrics", "[::1]:0"], in: scratch.path, label: "lb")
        #expect(s == 0, "\(err)")
        let rings = out.split(separator: "\n").compactMap { line -> String? in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], !(o["output_ring"] is NSNull) else { return nil }
            return o["interface"] as? String
        }
        #expect(rings == ["a:0", "a:1", "gen:0", "gen:1", "gen:2"], "\(rings)")
    }

    /// 1024 rings without consumers: lb says so in two bounded lines, not one line per ring.
    @Test func manyRingsFewLogLines() throws {
        let scratch = try Scratch("cli-many")
        let trace = try Ops.trace(in: scratch.path, packets: 100, flows: 10)
        let (s, _, err) = try Proc.run(Ops.lb, ["-i", "pcap:" + trace, "-p", "z:512", "-p", "y:512", "--ring-size", "64k", "--ring-slots", "256",
                                                "-w", "0.5", "--run-dir", scratch.path + "/run"], in: scratch.path, label: "lb")
        #expect(s == 0, "\(err)")
        let lines = err.split(separator: "\n")
        #expect(lines.count <= 3, "\(lines.count) lines: \(err.prefix(500))")
        #expect(lines.allSatisfy { $0.count < 400 })
        #expect(err.contains("1024 ring(s): z:0-511 y:0-511"), "\(err)")
    }

    /// A capture cut in the middle of a record: lb delivers what comes before, says how much of
    /// the file it did not read (stderr and the final stats), its consumers end as at an end of
    /// stream, and lb exits 3 so that a script cannot take the partial split for a whole one.
    @Test func aTruncatedCaptureIsAPartialSplit() throws {
        let scratch = try Scratch("cli-partial")
        let whole = try Ops.trace(in: scratch.path, packets: 500, flows: 20)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: whole))
        let cut = bytes.count - 37                     // inside the last record
        let trace = scratch.path + "/cut.pcap"
        try bytes.prefix(cut).write(to: URL(fileURLWithPath: trace))
        let runDir = scratch.path + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "c:1", "--run-dir", runDir, "-w", "20"], in: scratch.path, label: "lb")
        let cat = try Proc(Ops.lb, ["cat", "c:0", "-w", scratch.path + "/out.pcap", "--run-dir", runDir], in: scratch.path, label: "cat")
        let status = try lb.wait(seconds: 60)
        #expect(status == 3, "lb: \(lb.stderr)")
        #expect(try cat.wait(seconds: 20) == 0, "\(cat.stderr)")
        #expect(lb.stderr.contains("bytes not read") && lb.stderr.contains("partial"), "\(lb.stderr)")
        let stats = try LBStats(lb.stdout)
        let unread = (stats.aggregate["input_unread_bytes"] as? NSNumber)?.intValue ?? -1
        #expect(unread > 0 && unread < 2000, "input_unread_bytes \(unread)")
        #expect(stats.int("c:0", "packets_forwarded") == 499)

        // the whole file: exit 0 and nothing unread
        let (s2, out2, err2) = try Proc.run(Ops.lb, ["-i", "pcap:" + whole, "-p", "d:1", "--run-dir", runDir, "-w", "0"],
                                            in: scratch.path, label: "lb-whole")
        #expect(s2 == 0, "\(err2)")
        #expect((try LBStats(out2).aggregate["input_unread_bytes"] as? NSNumber)?.intValue == 0)
    }

    /// The capture shrinks while lb replays it (a file being rotated or copied over in place):
    /// lb ends the replay there, prints its final stats, the consumer ends as at an end of
    /// stream, and the exit status says the split is partial. (lb used to map the file and die
    /// of SIGBUS on the pages the truncation cut off.)
    @Test func aCaptureTruncatedDuringTheReplay() throws {
        let scratch = try Scratch("cli-shrink")
        let trace = scratch.path + "/big.pcap"
        let (g, _, gerr) = try Proc.run(Ops.lb, ["gen", "-w", trace, "--packets", "20000", "--flows", "50", "--sizes", "1500", "--seed", "3"],
                                        in: scratch.path, label: "gen")
        try #require(g == 0, "\(gerr)")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: trace)[.size] as? Int)
        #expect(size > 2 * CaptureFile.windowSize)      // the replay reads it in several windows
        let runDir = scratch.path + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "c:1", "--run-dir", runDir, "-w", "20", "--replay-rate", "10000"],
                          in: scratch.path, label: "lb")
        let cat = try Proc(Ops.lb, ["cat", "c:0", "-w", scratch.path + "/out.pcap", "--run-dir", runDir], in: scratch.path, label: "cat")
        usleep(500_000)
        #expect(truncate(trace, off_t(size / 2)) == 0)
        let status = try lb.wait(seconds: 60)
        #expect(status == 3, "lb: \(lb.stderr)")
        #expect(try cat.wait(seconds: 20) == 0, "\(cat.stderr)")
        #expect(lb.stderr.contains("while it was read") && lb.stderr.contains("partial"), "\(lb.stderr)")
        let stats = try LBStats(lb.stdout)                  // the final stats were printed
        let forwarded = stats.int("c:0", "packets_forwarded") ?? -1
        #expect(forwarded > 0 && forwarded < 20000, "forwarded \(forwarded)")
        let unread = (stats.aggregate["input_unread_bytes"] as? NSNumber)?.intValue ?? -1
        #expect(unread > 0 && unread <= size, "input_unread_bytes \(unread)")
        #expect(try readCapture(scratch.path + "/out.pcap").count == forwarded)
    }
}
