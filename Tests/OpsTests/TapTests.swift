import Foundation
import Testing

/// `lb tap` beside a ring's consumer: it shows exactly what tcpdump shows with the same
/// expression on the consumer's pcap, and the consumer gets everything anyway.
@Suite(.serialized) struct TapTests {
    /// The records of a classic pcap file (after the 24-byte file header).
    static func records(_ file: String) throws -> [UInt8] {
        let d = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        guard d.count >= 24 else { throw TestFailure("\(file): not a pcap file") }
        return Array(d[24...])
    }

    /// "IP src > dst" of each line (tcpdump -nn and lb tap agree on this part).
    static func flows(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line -> String? in
            let w = line.split(separator: " ")
            guard let i = w.firstIndex(where: { $0 == "IP" || $0 == "IP6" }), i + 3 < w.count, w[i + 2] == ">" else { return nil }
            return "\(w[0]) \(w[i]) \(w[i + 1]) > \(w[i + 3])"
        }
    }

    @Test func tapMatchesTcpdumpAndLeavesTheConsumerAlone() throws {
        let scratch = try Scratch("tap")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 4000, flows: 300)
        let runDir = dir + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:2", "--run-dir", runDir, "-w", "60"], in: dir, label: "lb")
        defer { lb.stop() }
        let tapPcap = try Proc(Ops.lb, ["tap", "a:0", "--run-dir", runDir, "-w", dir + "/tap.pcap", "tcp", "and", "not", "port", "80"],
                               in: dir, label: "tap-pcap")
        let tapText = try Proc(Ops.lb, ["tap", "a:0", "--run-dir", runDir, "udp"], in: dir, label: "tap-text",
                               environment: ["TZ": "UTC"])
        defer { tapPcap.stop(); tapText.stop() }
        #expect(try eventually(20) { tapPcap.stderr.contains("tapping a:0") && tapText.stderr.contains("tapping a:0") },
                "taps did not attach: \(tapPcap.stderr) \(tapText.stderr)")
        let cat0 = try Proc(Ops.lb, ["cat", "a:0", "-w", dir + "/a0.pcap", "--run-dir", runDir], in: dir, label: "cat0")
        let cat1 = try Proc(Ops.lb, ["cat", "a:1", "-w", "/dev/null", "--run-dir", runDir], in: dir, label: "cat1")
        #expect(try lb.wait(seconds: 60) == 0, "lb: \(lb.stderr)")
        #expect(try cat0.wait(seconds: 20) == 0)
        #expect(try cat1.wait(seconds: 20) == 0)
        #expect(try tapPcap.wait(seconds: 20) == 0, "\(tapPcap.stderr)")
        #expect(try tapText.wait(seconds: 20) == 0, "\(tapText.stderr)")
        #expect(tapPcap.stderr.contains(" 0 missed"), "\(tapPcap.stderr)")

        // The consumer got every packet of its ring, none dropped.
        let final = try LBStats(lb.stdout).byName
        #expect(final["a:0"]?.int("packets_dropped") == 0)
        let (cs, cout, cerr) = try Proc.run("/usr/bin/tcpdump", ["-nn", "-r", dir + "/a0.pcap"], in: dir, label: "tcpdump-all",
                                            environment: ["TZ": "UTC"])
        #expect(cs == 0, "\(cerr)")
        #expect(cout.split(separator: "\n").count == final["a:0"]?.int("packets_forwarded"))

        // Same packets, byte for byte, as tcpdump's filter on the consumer's file.
        let (fs, _, ferr) = try Proc.run("/usr/bin/tcpdump", ["-r", dir + "/a0.pcap", "-w", dir + "/filtered.pcap", "tcp and not port 80"],
                                         in: dir, label: "tcpdump-filter")
        #expect(fs == 0, "\(ferr)")
        let want = try Self.records(dir + "/filtered.pcap"), got = try Self.records(dir + "/tap.pcap")
        #expect(want.count > 1000, "the filter selected almost nothing (\(want.count) bytes)")
        #expect(got == want, "tap wrote \(got.count) bytes of records, tcpdump \(want.count)")

        // The text lines: the same packets (time, addresses, ports) as tcpdump -nn prints.
        let (ts, tout, _) = try Proc.run("/usr/bin/tcpdump", ["-nn", "-r", dir + "/a0.pcap", "udp"], in: dir, label: "tcpdump-udp",
                                         environment: ["TZ": "UTC"])
        #expect(ts == 0)
        let tcpdumpFlows = Self.flows(tout), tapFlows = Self.flows(tapText.stdout)
        #expect(tcpdumpFlows.count > 100)
        #expect(tapFlows == tcpdumpFlows, "first difference: \(zip(tapFlows, tcpdumpFlows).first { $0 != $1 }.map { "\($0) vs \($1)" } ?? "counts \(tapFlows.count) vs \(tcpdumpFlows.count)")")
    }

    /// A tap stopped while lb laps a tiny ring: when it resumes it skips what lb reused, says
    /// how many it missed, and every packet it shows is intact (one the consumer got).
    @Test func tapThatFallsBehindCountsWhatItMissed() throws {
        let scratch = try Scratch("tap-behind")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 4000, flows: 200)
        let runDir = dir + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:1", "--run-dir", runDir, "-w", "60", "--replay-rate", "2000",
                                   "--ring-slots", "64", "--ring-size", "64k"], in: dir, label: "lb")
        defer { lb.stop() }
        let tap = try Proc(Ops.lb, ["tap", "a:0", "--run-dir", runDir, "-w", dir + "/tap.pcap"], in: dir, label: "tap")
        defer { tap.stop() }
        #expect(try eventually(20) { tap.stderr.contains("tapping a:0") })
        let cat = try Proc(Ops.lb, ["cat", "a:0", "-w", dir + "/a0.pcap", "--run-dir", runDir], in: dir, label: "cat0")
        usleep(300_000)
        tap.signal(SIGSTOP)
        usleep(1_000_000)
        tap.signal(SIGCONT)
        #expect(try lb.wait(seconds: 60) == 0, "lb: \(lb.stderr)")
        #expect(try cat.wait(seconds: 20) == 0)
        #expect(try tap.wait(seconds: 20) == 0, "\(tap.stderr)")
        let final = try LBStats(lb.stdout).byName
        let forwarded = final["a:0"]?.int("packets_forwarded") ?? 0
        #expect(forwarded == 4000 && final["a:0"]?.int("packets_dropped") == 0, "the consumer lost packets to the tap")
        let err = tap.stderr
        #expect(err.contains("fell behind"), "\(err)")
        // "lb tap: a:0: S packets shown, M missed"
        let words = err.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," })
        let shown = words.firstIndex(of: "shown").flatMap { Int(words[$0 - 2]) } ?? -1
        let missed = words.lastIndex(of: "missed").flatMap { Int(words[$0 - 1]) } ?? -1
        #expect(missed > 0 && shown > 0 && shown + missed == forwarded, "shown \(shown) missed \(missed) of \(forwarded): \(err)")
        // Every record the tap wrote is one the consumer got, in the same order.
        let got = try Self.pcapRecords(dir + "/tap.pcap"), all = try Self.pcapRecords(dir + "/a0.pcap")
        #expect(got.count == shown)
        var j = 0, inOrder = true
        for r in got {
            while j < all.count && all[j] != r { j += 1 }
            if j == all.count { inOrder = false; break }
            j += 1
        }
        #expect(inOrder, "a tap record is not one the consumer got, in order (torn copy?)")
    }

    /// The records of a classic microsecond pcap, one array per packet (header + bytes).
    static func pcapRecords(_ file: String) throws -> [[UInt8]] {
        let d = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        var out: [[UInt8]] = []
        var at = 24
        while at + 16 <= d.count {
            let caplen = Int(d[at + 8]) | Int(d[at + 9]) << 8 | Int(d[at + 10]) << 16 | Int(d[at + 11]) << 24
            guard at + 16 + caplen <= d.count else { throw TestFailure("\(file): truncated record") }
            out.append(Array(d[at..<at + 16 + caplen]))
            at += 16 + caplen
        }
        return out
    }

    @Test func badExpressionIsAClearError() throws {
        let scratch = try Scratch("tap-bad")
        let (s, _, err) = try Proc.run(Ops.lb, ["tap", "a:0", "--run-dir", scratch.path, "--wait", "0.1", "tcp", "port", "banana"],
                                       in: scratch.path, label: "tap")
        #expect(s != 0)
        #expect(err.contains("filter 'tcp port banana'"), "\(err)")
    }
}
