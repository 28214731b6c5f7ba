import Foundation
import LBCore
import Testing

/// `lb gen -i IFACE`: frames sent on one end of a veth pair arrive byte-identical, in order and
/// all of them, at the other end (in a namespace of the test's own), as tcpdump sees them.
@Suite(.serialized) struct GenSendTests {
    /// A veth pair: `outer` in this namespace (lb gen sends there), `inner` in a new namespace
    /// (tcpdump listens there). IPv6 is off on both before they go up, so nothing but the test's
    /// frames crosses the link. Removed when the value goes away, also after a failed test.
    final class VethPair {
        nonisolated(unsafe) static var counter = 0
        let namespace: String
        let outer: String
        let inner: String
        let dir: String
        private var made: [String] = []

        init(dir: String, mtu: Int = 1600) throws {
            Self.counter += 1
            let tag = "\(getpid() % 1_000_000)x\(Self.counter)"
            namespace = "lbgn\(tag)"
            outer = "lbga\(tag)"
            inner = "lbgb\(tag)"
            self.dir = dir
            try sh("/usr/sbin/ip", "netns", "add", namespace)
            made.append("netns")
            try sh("/usr/sbin/ip", "link", "add", outer, "mtu", "\(mtu)", "type", "veth", "peer", "name", inner, "mtu", "\(mtu)", "netns", namespace)
            made.append("link")
            if mtu >= 1280 {          // below 1280 the kernel gives the interface no IPv6 at all
                try sh("/usr/sbin/sysctl", "-qw", "net.ipv6.conf.\(outer).disable_ipv6=1")
                try inNamespace("/usr/sbin/sysctl", "-qw", "net.ipv6.conf.\(inner).disable_ipv6=1")
            }
            try sh("/usr/sbin/ip", "link", "set", outer, "up")
            try inNamespace("/usr/sbin/ip", "link", "set", inner, "up")
        }

        deinit {
            if made.contains("link") { try? sh("/usr/sbin/ip", "link", "del", outer) }
            if made.contains("netns") { try? sh("/usr/sbin/ip", "netns", "del", namespace) }
        }

        func inNamespace(_ args: String...) throws {
            try sh("/usr/sbin/ip", ["netns", "exec", namespace] + args)
        }

        func sh(_ path: String, _ args: String...) throws { try sh(path, args) }

        func sh(_ path: String, _ args: [String]) throws {
            let t = try Tool(path, args, in: dir, label: "sh-\(UUID().uuidString.prefix(6))")
            let status = try t.wait(seconds: 30)
            guard status == 0 else { throw TestFailure("\(path) \(args.joined(separator: " ")) exited \(status): \(t.stderr)") }
        }

        /// Starts tcpdump on the inner end, to take `count` frames, and waits until it listens.
        func startCapture(_ file: String, count: Int) throws -> Tool {
            let t = try Tool("/usr/sbin/ip", ["netns", "exec", namespace, "/usr/bin/tcpdump", "-i", inner, "-n", "-Z", "root", "-c", "\(count)",
                                              "-B", "32768", "-U", "-s", "0", "-w", file],
                             in: dir, label: "tcpdump-\(UUID().uuidString.prefix(6))")
            for _ in 0..<400 {
                if t.stderr.contains("listening on") { return t }
                guard t.child.isRunning else { throw TestFailure("tcpdump did not start: \(t.stderr)") }
                usleep(25_000)
            }
            t.signal(SIGKILL)
            throw TestFailure("tcpdump did not start listening within 10 s: \(t.stderr)")
        }

        /// Waits for tcpdump to have its frames and exit, and returns what it captured (with
        /// the frames that came, when fewer came: it is killed after 10 s).
        func finishCapture(_ t: Tool, _ file: String) throws -> [[UInt8]] {
            do { try t.wait(seconds: 10) } catch { Issue.record("tcpdump still waiting for frames: \(t.stderr)") }
            #expect(t.stderr.contains("\n0 packets dropped by kernel"), "tcpdump: \(t.stderr)")
            return try GenSendTests.frames(file)
        }
    }

    /// The frames of a capture file, in order.
    static func frames(_ path: String) throws -> [[UInt8]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try data.withUnsafeBytes { raw in
            var reader = try CaptureReader(raw)
            var out: [[UInt8]] = []
            while let p = reader.next() { out.append(Array(p.data)) }
            return out
        }
    }

    /// Runs `lb gen` with `args` and returns its JSON report.
    static func gen(_ args: [String], in dir: String) throws -> [String: Any] {
        let t = try Tool(Tool.lb, ["gen"] + args, in: dir, label: "gen-\(UUID().uuidString.prefix(6))")
        let status = try t.wait(seconds: 120)
        guard status == 0 else { throw TestFailure("lb gen \(args.joined(separator: " ")) exited \(status): \(t.stderr)") }
        guard let line = t.stdout.split(separator: "\n").last,
              let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw TestFailure("lb gen printed no JSON report: \(t.stdout) \(t.stderr)")
        }
        return json
    }

    /// The first frames that differ, for a failure message.
    static func firstDifference(_ a: [[UInt8]], _ b: [[UInt8]]) -> String {
        for i in 0..<min(a.count, b.count) where a[i] != b[i] {
            return "frame \(i): \(a[i].count) bytes sent as \(b[i].count) bytes received"
        }
        return a.count == b.count ? "none" : "counts \(a.count) and \(b.count)"
    }

    @Test func synthesizedMixArrivesByteIdentical() throws {
        let scratch = try ScratchDirectory("gen-send-mix")
        let veth = try VethPair(dir: scratch.path)
        let options = ["--mode", "mix", "--flows", "200", "--packets", "3000", "--seed", "11", "--sizes", "64-1500"]
        _ = try Tool.run(Tool.lb, ["gen", "-w", scratch.path + "/expected.pcap"] + options, in: scratch.path, label: "gen-w")
        let expected = try Self.frames(scratch.path + "/expected.pcap")
        #expect(expected.count == 3000)
        #expect(expected.contains { $0.count > 1400 }, "the trace holds large frames too")

        let tcpdump = try veth.startCapture(scratch.path + "/got.pcap", count: 3000)
        let report = try Self.gen(["-i", veth.outer, "--rate", "50000"] + options, in: scratch.path)
        let got = try veth.finishCapture(tcpdump, scratch.path + "/got.pcap")

        #expect(report.int("packets_sent") == 3000)
        #expect(report.int("bytes_sent") == expected.reduce(0) { $0 + $1.count })
        #expect(report.int("frames_skipped") == 0)
        #expect(got.count == 3000, "tcpdump got \(got.count) of 3000 frames")
        #expect(got == expected ? true : false, "first difference: \(Self.firstDifference(expected, got))")
    }

    /// A capture replayed twice over (--count is twice its length) arrives twice, in order.
    @Test func replayedCaptureArrivesTwice() throws {
        let scratch = try ScratchDirectory("gen-send-replay")
        let veth = try VethPair(dir: scratch.path)
        let trace = scratch.path + "/vxlan.pcap"
        _ = try Tool.run(Tool.lb, ["gen", "-w", trace, "--mode", "vxlan", "--flows", "50", "--packets", "700", "--seed", "5", "--sizes", "60-1400"],
                         in: scratch.path, label: "gen-w")
        let expected = try Self.frames(trace)
        #expect(expected.count == 700)

        let tcpdump = try veth.startCapture(scratch.path + "/got.pcap", count: 1400)
        let report = try Self.gen(["-i", veth.outer, "--replay", trace, "--count", "1400", "--batch", "16", "--rate", "20000"], in: scratch.path)
        let got = try veth.finishCapture(tcpdump, scratch.path + "/got.pcap")

        #expect(report.int("packets_sent") == 1400)
        #expect(got.count == 1400, "tcpdump got \(got.count) of 1400 frames")
        #expect(got == expected + expected ? true : false, "first difference: \(Self.firstDifference(expected + expected, got))")
    }

    /// Frames longer than the interface takes are skipped and counted, not sent or fatal.
    @Test func framesLongerThanTheMTUAreCounted() throws {
        let scratch = try ScratchDirectory("gen-send-mtu")
        let veth = try VethPair(dir: scratch.path, mtu: 1000)
        let options = ["--mode", "mix", "--flows", "100", "--packets", "1000", "--seed", "3", "--sizes", "imix"]
        _ = try Tool.run(Tool.lb, ["gen", "-w", scratch.path + "/expected.pcap"] + options, in: scratch.path, label: "gen-w")
        let all = try Self.frames(scratch.path + "/expected.pcap")
        let fitting = all.filter { $0.count <= 1014 }
        #expect(fitting.count < all.count && fitting.count > 0, "the imix trace has frames on both sides of 1014 bytes")

        let tcpdump = try veth.startCapture(scratch.path + "/got.pcap", count: fitting.count)
        let report = try Self.gen(["-i", veth.outer, "--rate", "20000"] + options, in: scratch.path)
        let got = try veth.finishCapture(tcpdump, scratch.path + "/got.pcap")

        #expect(report.int("frames_skipped") == all.count - fitting.count)
        #expect(report.int("packets_sent") == fitting.count)
        #expect(got == fitting ? true : false, "first difference: \(Self.firstDifference(fitting, got))")
    }

    /// --rate paces: 3000 frames at 20 kpps cannot all leave in much under 150 ms (the token
    /// bucket allows a catch-up burst of at most 1 ms of packets), and the capture's own
    /// timestamps span that long too. (A lower bound only: this is a pacing check, not a
    /// performance measurement.)
    @Test func rateIsPaced() throws {
        let scratch = try ScratchDirectory("gen-send-rate")
        let veth = try VethPair(dir: scratch.path)
        let tcpdump = try veth.startCapture(scratch.path + "/got.pcap", count: 3000)
        let report = try Self.gen(["-i", veth.outer, "--mode", "udp64", "--packets", "3000", "--rate", "20000"], in: scratch.path)
        _ = try veth.finishCapture(tcpdump, scratch.path + "/got.pcap")
        #expect(report.int("packets_sent") == 3000)
        let seconds = (report["seconds"] as? Double) ?? (report["seconds"] as? NSNumber)?.doubleValue ?? 0
        #expect(seconds >= 0.145, "3000 frames at 20 kpps took \(seconds) s")

        let data = try Data(contentsOf: URL(fileURLWithPath: scratch.path + "/got.pcap"))
        let span: UInt64 = try data.withUnsafeBytes { raw in
            var reader = try CaptureReader(raw)
            var first: UInt64? = nil, last: UInt64 = 0, n = 0
            while let p = reader.next() { first = first ?? p.timestampNanos; last = p.timestampNanos; n += 1 }
            #expect(n == 3000)
            return last - (first ?? last)
        }
        #expect(span >= 140_000_000, "capture timestamps span \(span) ns")
    }

    @Test func unknownInterfaceIsAClearError() throws {
        let scratch = try ScratchDirectory("gen-send-noif")
        let t = try Tool(Tool.lb, ["gen", "-i", "lbgnosuch\(getpid() % 100_000)", "--packets", "10"], in: scratch.path, label: "gen")
        let status = try t.wait(seconds: 60)
        #expect(status == 1)
        #expect(t.stderr.contains("No such device"), "stderr: \(t.stderr)")
        let both = try Tool(Tool.lb, ["gen", "-i", "lo", "-w", scratch.path + "/x.pcap"], in: scratch.path, label: "gen2")
        #expect(try both.wait(seconds: 60) != 0)
        #expect(both.stderr.contains("-w and -i"), "stderr: \(both.stderr)")
    }
}
