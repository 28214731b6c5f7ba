import Foundation
import LBRing
import LBWorker
import Testing

/// `lb check` as Nagios runs it, against a running lb with four consumers.
@Suite(.serialized) struct CheckTests {
    static func check(_ runDir: String, in dir: String) throws -> (Int32, String) {
        let (s, out, _) = try Proc.run(Ops.lb, ["check", "--run-dir", runDir, "--interval", "0.3", "--stuck", "1.5,2"],
                                       in: dir, label: "check-\(UInt32.random(in: 0...UInt32.max))")
        return (s, out)
    }

    /// Thresholds are WARN,CRIT pairs; anything else is ArgumentParser's usage error (64).
    @Test func badThresholdsAreUsageErrors() throws {
        let scratch = try Scratch("check-usage")
        for bad in [["--drop", "5"], ["--stuck", "5,2"], ["--loss", "x,1"], ["--drop", "-1,1"]] {
            let (s, _, err) = try Proc.run(Ops.lb, ["check"] + bad, in: scratch.path, label: "usage-\(bad[0].dropFirst(2))")
            #expect(s == 64, "\(bad): exit \(s)")
            #expect(err.contains("'\(bad[0]) <") || err.contains(bad[0]), "\(bad): \(err)")
        }
    }

    @Test func notRunningIsCritical() throws {
        let scratch = try Scratch("check-none")
        let (s, out) = try Self.check(scratch.path + "/run", in: scratch.path)
        #expect(s == 2)
        #expect(out.hasPrefix("LB CRITICAL - lb is not running"), "\(out)")
    }

    @Test func oneStoppedConsumerOfFourIsCriticalByName() throws {
        let scratch = try Scratch("check")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 60000, flows: 400)
        let runDir = dir + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:4", "--run-dir", runDir, "-w", "60", "--replay-rate", "2000"],
                          in: dir, label: "lb")
        var cats: [Proc] = []
        for k in 0..<4 { cats.append(try Proc(Ops.lb, ["cat", "a:\(k)", "-w", "/dev/null", "--run-dir", runDir], in: dir, label: "cat\(k)")) }
        defer { lb.stop(); for c in cats { c.stop() } }
        #expect(try eventually(30) { (try? Ops.stats(runDir: runDir, in: dir))?["lb"]?.int("packets_received") ?? 0 > 500 })

        var last = (Int32(-1), "")
        #expect(try eventually(10) { last = try Self.check(runDir, in: dir); return last.0 == 0 }, "not OK at first: \(last.1)")
        #expect(last.1.hasPrefix("LB OK - 4 rings OK |"), "\(last.1)")
        #expect(last.1.contains("'a:2 backlog'="), "no perfdata: \(last.1)")

        // lb stats shows the same rings, as a table.
        let (ss, table, serr) = try Proc.run(Ops.lb, ["stats", "--run-dir", runDir], in: dir, label: "stats-table")
        #expect(ss == 0, "\(serr)")
        for k in 0..<4 { #expect(table.contains("a:\(k)   attached  \(cats[k].pid)"), "\(table)") }

        cats[2].signal(SIGSTOP)
        #expect(try eventually(15) { last = try Self.check(runDir, in: dir); return last.0 == 2 }, "never CRITICAL: \(last.1)")
        let message = String(last.1.split(separator: "|").first ?? "")
        #expect(message.hasPrefix("LB CRITICAL - a:2 consumer pid \(cats[2].pid) stuck"), "\(last.1)")
        #expect(message.contains("3 of 4 rings OK"), "\(message)")
        for other in ["a:0", "a:1", "a:3"] { #expect(!message.contains(other), "\(other) reported: \(message)") }

        cats[2].signal(SIGCONT)
        #expect(try eventually(15) { last = try Self.check(runDir, in: dir); return last.0 == 0 }, "not OK after SIGCONT: \(last.1)")
        #expect(last.1.hasPrefix("LB OK - 4 rings OK"))
    }

    /// A worker that writes figures that cannot be right (more gaps than acks) is not judged by
    /// them: lb check warns that the report is suspect instead of printing an absurd loss.
    @Test func aGarbageWorkerReportIsSuspectNotALoss() throws {
        let scratch = try Scratch("check-garbage")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 20000, flows: 100)
        let runDir = dir + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:1", "--run-dir", runDir, "-w", "60", "--replay-rate", "2000"],
                          in: dir, label: "lb")
        defer { lb.stop() }
        var consumer = try RingConsumer.attach(RingName(group: "a", index: 0), runDir: runDir, waitNanos: 20_000_000_000)
        consumer.report(processed: 1, lossGaps: 1 << 62, lossAcks: 12)
        var last = (Int32(-1), "")
        let warned = try eventually(10) {
            _ = consumer.poll(max: 100_000) { _ in }
            last = try Self.check(runDir, in: dir)
            return last.0 == 1
        }
        #expect(warned, "\(last.1)")
        #expect(last.1.contains("reports figures that cannot be right (4611686018427387904 gaps of 12 acks)"), "\(last.1)")
        #expect(!last.1.contains("% loss"), "\(last.1)")
    }

    /// A user who may not look into lb's run directory (outside --ring-group) gets UNKNOWN:
    /// lb may well be running.
    @Test func notAllowedToAskIsUnknown() throws {
        let scratch = try Scratch("check-denied")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 100, flows: 10)
        let runDir = dir + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:1", "--run-dir", runDir, "-w", "60", "--ring-group", "daemon"],
                          in: dir, label: "lb")
        defer { lb.stop() }
        #expect(try eventually(20) { FileManager.default.fileExists(atPath: runDir + "/a.sock") })
        let (s, out, _) = try Proc.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", Ops.lb, "check",
                                                            "--run-dir", runDir, "--interval", "0"], in: dir, label: "check-nobody")
        #expect(s == 3, "\(out)")
        #expect(out.hasPrefix("LB UNKNOWN - ") && out.contains("permission denied"), "\(out)")
    }
}
