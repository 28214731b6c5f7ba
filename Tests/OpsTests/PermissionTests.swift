import Foundation
import Testing

/// --ring-group: only members of the group (and lb's user) can open a ring; a consumer refuses
/// a socket that does not belong to the user lb runs as.
@Suite(.serialized) struct PermissionTests {
    /// Runs lb as user nobody (65534) with the given groups.
    /// (A copy of lb in the scratch directory: the build directory may not be open to nobody.)
    static func asNobody(_ args: [String], groups: String?, in dir: String, label: String) throws -> (Int32, String) {
        let copy = dir + "/lb-copy"
        if !FileManager.default.fileExists(atPath: copy) { try copyExecutable(Ops.lb, to: copy) }
        let ids = ["--reuid=65534", "--regid=65534"] + (groups.map { ["--groups=\($0)"] } ?? ["--clear-groups"])
        // Other suites spawn processes meanwhile; one forked while the copy was open for writing
        // holds that descriptor until it execs, and exec of the copy then fails with ETXTBSY
        // (setpriv exits 126). That is the test machinery, not lb: try again shortly.
        for _ in 0..<20 {
            let (s, _, err) = try Proc.run("/usr/bin/setpriv", ids + ["--", copy] + args, in: dir, label: label)
            if !(s == 126 && err.contains("Text file busy")) { return (s, err) }
            usleep(50_000)
        }
        throw OpsFailure("\(copy) stayed busy (ETXTBSY) for a second")
    }

    /// Copies a program through a close-on-exec descriptor, so children spawned meanwhile do
    /// not inherit it.
    static func copyExecutable(_ from: String, to path: String) throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: from))
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw OpsFailure("cannot create \(path): errno \(errno)") }
        defer { close(fd) }
        try bytes.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let n = write(fd, b.baseAddress! + done, b.count - done)
                guard n > 0 else { throw OpsFailure("cannot write \(path): errno \(errno)") }
                done += n
            }
        }
        fchmod(fd, 0o755)
    }

    @Test func onlyTheRingGroupCanOpenARing() throws {
        #expect(getuid() == 0, "this test must run as root (it switches to user nobody)")
        let scratch = try Scratch("perm")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 2000, flows: 100)
        let runDir = dir + "/run"
        // Group "daemon" (gid 1) exists on every Debian system; nobody is not in it.
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:1", "--run-dir", runDir, "-w", "60", "--ring-group", "daemon"],
                          in: dir, label: "lb")
        defer { lb.stop() }
        #expect(try Ops.until(20) { FileManager.default.fileExists(atPath: runDir + "/a.sock") })

        var st = stat()
        #expect(stat(runDir + "/a.sock", &st) == 0)
        #expect(st.st_gid == 1 && st.st_mode & 0o777 == 0o660, "socket gid \(st.st_gid) mode \(String(st.st_mode & 0o777, radix: 8))")
        #expect(stat(runDir, &st) == 0)
        #expect(st.st_gid == 1 && st.st_mode & 0o777 == 0o750, "run dir gid \(st.st_gid) mode \(String(st.st_mode & 0o777, radix: 8))")
        // The ring memory itself: memfds of mode 0640, group daemon.
        var memfds = 0
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(lb.pid)/fd")) ?? [] {
            let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(lb.pid)/fd/\(fd)")) ?? ""
            guard link.hasPrefix("/memfd:") else { continue }
            memfds += 1
            #expect(stat("/proc/\(lb.pid)/fd/\(fd)", &st) == 0)
            #expect(st.st_mode & 0o777 == 0o640 && st.st_gid == 1, "\(link): mode \(String(st.st_mode & 0o777, radix: 8)) gid \(st.st_gid)")
        }
        #expect(memfds >= 2)

        // Outside the group: refused with a clear message.
        let (s1, e1) = try Self.asNobody(["cat", "a:0", "-w", "/dev/null", "--run-dir", runDir, "--wait", "1"], groups: nil,
                                         in: dir, label: "outsider")
        #expect(s1 == 1)
        #expect(e1.contains("permission denied: only lb's user and members of its --ring-group may attach"), "\(e1)")
        let (s2, e2) = try Self.asNobody(["tap", "a:0", "--run-dir", runDir, "--wait", "1"], groups: nil, in: dir, label: "outsider-tap")
        #expect(s2 == 1 && e2.contains("permission denied: only lb's user"), "\(e2)")

        // A member of the group: attaches and reads.
        let (s3, e3) = try Self.asNobody(["cat", "a:0", "-w", "/dev/null", "-c", "10", "--run-dir", runDir, "--wait", "5"],
                                         groups: "1", in: dir, label: "member")
        #expect(s3 == 0, "a member of the ring group was refused: \(e3)")
        #expect(e3.contains("10 packets"), "\(e3)")
    }

    @Test func consumerRefusesASocketOfAnotherUser() throws {
        let scratch = try Scratch("perm-owner")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 100, flows: 10)
        let runDir = dir + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:1", "--run-dir", runDir, "-w", "60"], in: dir, label: "lb")
        defer { lb.stop() }
        #expect(try Ops.until(20) { FileManager.default.fileExists(atPath: runDir + "/a.sock") })
        // The consumer is told lb runs as "nobody": lb (root) is not that user.
        let (s, _, err) = try Proc.run(Ops.lb, ["cat", "a:0", "-w", "/dev/null", "--run-dir", runDir, "--wait", "1"], in: dir,
                                       label: "cat", environment: ["LB_USER": "nobody"])
        #expect(s == 1)
        #expect(err.contains("not by the user lb runs as"), "\(err)")
    }
}
