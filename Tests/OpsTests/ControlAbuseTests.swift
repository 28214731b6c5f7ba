import Foundation
import Glibc
import LBRing
import Testing

/// The control server against clients that misbehave (issue 14's probes): more connections than
/// lb may open files must not make it spin or flood its log, and it serves again once they go.
@Suite(.serialized) struct ControlAbuseTests {
    static func cpuTicks(_ pid: Int32) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = s.lastIndex(of: ")") else { return 0 }
        let f = s[s.index(after: close)...].split(separator: " ")
        return (Int(f[11]) ?? 0) + (Int(f[12]) ?? 0)        // utime + stime
    }

    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0)
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { dst in for (i, b) in path.utf8.enumerated() where i < dst.count - 1 { dst[i] = b } }
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        if r != 0 { close(fd); return -1 }
        return fd
    }

    @Test func twiceTheFileLimitOfClientsNeitherSpinsNorFloods() throws {
        let scratch = try Scratch("abuse-files")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 100, flows: 10)
        let runDir = dir + "/run"
        let limit = 64
        let lb = try Proc("/usr/bin/prlimit", ["--nofile=\(limit)", "--", Ops.lb, "-i", "pcap:" + trace, "-p", "a:1", "--run-dir", runDir,
                                                "-w", "60"], in: dir, label: "lb")
        defer { lb.stop() }
        #expect(try eventually(20) { FileManager.default.fileExists(atPath: runDir + "/a.sock") })
        usleep(200_000)
        var clients: [Int32] = []
        defer { for c in clients { close(c) } }
        for _ in 0..<(2 * limit) {
            let c = Self.connect(runDir + "/a.sock")
            if c >= 0 { clients.append(c) }
        }
        #expect(clients.count > limit, "only \(clients.count) connections went through")
        let before = Self.cpuTicks(lb.child.pid)
        usleep(1_500_000)
        let used = Self.cpuTicks(lb.child.pid) - before     // clock ticks (100 a second)
        #expect(used < 30, "lb used \(used) ticks of CPU in 1.5 s at its file limit: a busy loop")
        let lines = lb.stderr.split(separator: "\n").filter { $0.contains("control:") }.count
        #expect(lines < 10, "\(lines) log lines: \(lb.stderr.suffix(600))")
        for c in clients { close(c) }
        clients = []
        // the clients are gone: lb answers a stats request again
        var answered = false
        _ = try eventually(10) {
            answered = (try? Ops.stats(runDir: runDir, in: dir))?["a:0"] != nil
            return answered
        }
        #expect(answered, "lb did not answer after the clients left: \(lb.stderr.suffix(600))")
    }

    /// Clients that ask for stats and never read them delay nobody: with 512 rings (a stats
    /// answer of ~300 KiB), five such clients, and a normal `lb stats` is answered while they
    /// still wait for theirs (lb drops them only later, when they have not read in 2 s).
    @Test func slowStatsReadersDelayNobody() throws {
        let scratch = try Scratch("abuse-slow")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 100, flows: 10)
        let runDir = dir + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:512", "--run-dir", runDir, "-w", "60", "--ring-slots", "64",
                                   "--ring-size", "64k", "--slot-size", "2048"], in: dir, label: "lb")
        defer { lb.stop() }
        #expect(eventually(30) { lb.stderr.contains("waiting up to") }, "\(lb.stderr)")
        var slow: [Int32] = []
        defer { for c in slow { close(c) } }
        let request = AttachProtocol.encode(AttachProtocol.Request(group: "a", ring: 0, mode: .stats))
        for _ in 0..<5 {
            let c = Self.connect(runDir + "/a.sock")
            #expect(c >= 0)
            _ = request.withUnsafeBytes { send(c, $0.baseAddress, $0.count, 0) }
            slow.append(c)
        }
        // lb has begun each slow reader's answer (its first messages wait in their sockets)
        #expect(eventually(20) {
            slow.allSatisfy { c in var p = pollfd(fd: c, events: Int16(POLLIN), revents: 0); return poll(&p, 1, 0) == 1 }
        })
        let st = try Proc(Ops.lb, ["stats", "--json", "--run-dir", runDir], in: dir, label: "stats")
        #expect(try st.wait(seconds: 30) == 0)
        #expect(st.stdout.split(separator: "\n").count == 513)
        // answered before the slow readers were given up: lb had not waited for them
        #expect(!lb.stderr.contains("took too long"), "\(lb.stderr.suffix(600))")
        for c in slow {
            var p = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
            #expect(poll(&p, 1, 0) == 1 && p.revents & Int16(POLLHUP) == 0, "a slow reader was dropped before lb stats got its answer")
        }
        // and then they are given up, and say so
        #expect(eventually(20) { lb.stderr.contains("stats reader(s) took too long; dropped") }, "\(lb.stderr.suffix(600))")
    }
}
