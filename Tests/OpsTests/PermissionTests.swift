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
        throw TestFailure("\(copy) stayed busy (ETXTBSY) for a second")
    }

    /// Copies a program through a close-on-exec descriptor, so children spawned meanwhile do
    /// not inherit it.
    static func copyExecutable(_ from: String, to path: String) throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: from))
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw TestFailure("cannot create \(path): errno \(errno)") }
        defer { close(fd) }
        try bytes.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let n = write(fd, b.baseAddress! + done, b.count - done)
                guard n > 0 else { throw TestFailure("cannot write \(path): errno \(errno)") }
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
        // lb says it waits for consumers once its sockets and rings have their owners and modes
        #expect(eventually(20) { lb.stderr.contains("waiting up to") }, "\(lb.stderr)")

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
        #expect(try eventually(20) { FileManager.default.fileExists(atPath: runDir + "/a.sock") })
        // The consumer is told lb runs as "nobody": lb (root) is not that user.
        let (s, _, err) = try Proc.run(Ops.lb, ["cat", "a:0", "-w", "/dev/null", "--run-dir", runDir, "--wait", "1"], in: dir,
                                       label: "cat", environment: ["LB_USER": "nobody"])
        #expect(s == 1)
        #expect(err.contains("not by the user lb runs as"), "\(err)")
    }

    /// Security settings that cannot be applied stop lb with the path and the errno; a run
    /// directory another user could write into is refused; a umask of 000 loosens nothing.
    @Test func permissionsThatCannotBeAppliedStopLB() throws {
        #expect(getuid() == 0, "this test must run as root (it switches to user nobody)")
        let scratch = try Scratch("perm-checked")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 100, flows: 10)
        func lb(_ args: [String], label: String) throws -> (Int32, String) {
            let (s, _, err) = try Proc.run(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:1", "-w", "0"] + args, in: dir, label: label)
            return (s, err)
        }
        // a group that does not exist
        let (s1, e1) = try lb(["--run-dir", dir + "/r1", "--ring-group", "no-such-group-here"], label: "nogroup")
        #expect(s1 != 0 && e1.contains("no such group"), "\(e1)")
        // a group lb's user is not in: nobody cannot give its socket to group daemon
        try FileManager.default.createDirectory(atPath: dir + "/r2", withIntermediateDirectories: true)
        chown(dir + "/r2", 65534, 65534)
        let (s2, e2) = try Self.asNobody(["-i", "pcap:" + trace, "-p", "a:1", "-w", "0", "--run-dir", dir + "/r2", "--ring-group", "daemon"],
                                         groups: nil, in: dir, label: "notmember")
        #expect(s2 != 0, "lb ran although it could not apply --ring-group: \(e2)")
        #expect(e2.contains("cannot give \(dir)/r2 to group 1") && e2.contains("Operation not permitted"), "\(e2)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/r2/a.sock"), "a socket was left behind")
        // a run directory that belongs to another user
        try FileManager.default.createDirectory(atPath: dir + "/r3", withIntermediateDirectories: true)
        chown(dir + "/r3", 65534, 65534)
        let (s3, e3) = try lb(["--run-dir", dir + "/r3"], label: "otherowner")
        #expect(s3 != 0 && e3.contains("belongs to uid 65534"), "\(e3)")
        // a run directory anyone can write into; a sticky one is fine
        try FileManager.default.createDirectory(atPath: dir + "/r4", withIntermediateDirectories: true)
        chmod(dir + "/r4", 0o777)
        let (s4, e4) = try lb(["--run-dir", dir + "/r4"], label: "worldwritable")
        #expect(s4 != 0 && e4.contains("has mode 777"), "\(e4)")
        chmod(dir + "/r4", 0o1777)
        let (s5, e5) = try lb(["--run-dir", dir + "/r4"], label: "sticky")
        #expect(s5 == 0, "\(e5)")
        // umask 000: the socket and the run directory still get exactly the modes lb sets
        let runDir = dir + "/r6"
        let l = try Proc("/bin/sh", ["-c", "umask 000; exec \"$0\" \"$@\"", Ops.lb, "-i", "pcap:" + trace, "-p", "a:1", "-w", "60",
                                     "--run-dir", runDir], in: dir, label: "umask")
        defer { l.stop() }
        #expect(eventually(20) { l.stderr.contains("waiting up to") }, "\(l.stderr)")
        var st = stat()
        #expect(stat(runDir + "/a.sock", &st) == 0 && st.st_mode & 0o777 == 0o660, "socket mode \(String(st.st_mode & 0o777, radix: 8))")
        #expect(stat(runDir, &st) == 0 && st.st_mode & 0o022 == 0, "run dir mode \(String(st.st_mode & 0o777, radix: 8))")
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(l.child.pid)/fd")) ?? [] {
            let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(l.child.pid)/fd/\(fd)")) ?? ""
            guard link.hasPrefix("/memfd:lb:") else { continue }
            #expect(stat("/proc/\(l.child.pid)/fd/\(fd)", &st) == 0 && st.st_mode & 0o077 & ~0o040 == 0, "\(link): \(String(st.st_mode & 0o777, radix: 8))")
        }
    }
}
