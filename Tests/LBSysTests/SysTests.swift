import Glibc
import LBSys
import Synchronization
import Testing

/// LBSys's wrappers against the real kernel: each does its syscall and reports its errno.
@Suite struct SysTests {
    static func scratch() throws -> String {
        var template = Array("/tmp/lbsys-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw SysError("mkdtemp") }
        return String(cString: p)
    }

    @Test func openReportsItsErrno() {
        do {
            _ = try Sys.open("/nonexistent/lb-test", O_RDONLY)
            Issue.record("open of a missing file succeeded")
        } catch {
            #expect(error.code == ENOENT)
            #expect("\(error)".contains("open"), "\(error)")
        }
    }

    @Test func memfdSealedAndMapped() throws {
        let fd = try Sys.memfd("lb-test")
        defer { Sys.close(fd) }
        try Sys.truncate(fd, 4096)
        #expect(try Sys.fileSize(fd) == 4096)
        let p = try Sys.map(fd, size: 4096, writable: true)
        p.storeBytes(of: 0xDEAD_BEEF, as: UInt32.self)
        let q = try Sys.map(fd, size: 4096, writable: false)
        #expect(q.load(as: UInt32.self) == 0xDEAD_BEEF, "two mappings of one memfd see the same bytes")
        Sys.unmap(p, size: 4096)
        Sys.unmap(q, size: 4096)
        try Sys.seal(fd, futureWrite: true)
        #expect(throws: SysError.self) { _ = try Sys.map(fd, size: 4096, writable: true) }   // sealed: no new writable map
    }

    @Test func futexWakesAWaiter() {
        let word = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: 1)
        word.initialize(to: Atomic(0))
        defer { word.deallocate() }
        let address = UInt(bitPattern: word)
        let t = Threads.spawn("waker") {
            Sys.sleep(nanos: 20_000_000)
            let w = UnsafeMutablePointer<Atomic<UInt32>>(bitPattern: address)!
            w.pointee.store(1, ordering: .releasing)
            Sys.futexWake(UnsafeRawPointer(w))
        }
        while word.pointee.load(ordering: .acquiring) == 0 {
            Sys.futexWait(UnsafeRawPointer(word), expected: 0, timeoutNanos: 5_000_000_000)
        }
        Threads.join(t)
        #expect(word.pointee.load(ordering: .relaxed) == 1)
        // a wrong expected value returns at once
        Sys.futexWait(UnsafeRawPointer(word), expected: 7, timeoutNanos: 5_000_000_000)
    }

    @Test func eventfdRingsPoll() throws {
        let fd = try Sys.eventfd()
        defer { Sys.close(fd) }
        #expect(!Sys.readable(fd))
        Sys.ring(eventfd: fd)
        #expect(Sys.readable(fd))
    }

    /// A descriptor sent over a SOCK_SEQPACKET socket arrives as a working descriptor.
    @Test func unixSocketPassesDescriptors() throws {
        let dir = try Self.scratch()
        defer { _ = rmdir(dir) }
        let path = dir + "/s.sock"
        let listener = try Sys.listenUnix(path)
        defer { Sys.close(listener); Sys.unlink(path) }
        let client = try Sys.connectUnix(path)
        defer { Sys.close(client) }
        guard let server = try Sys.accept(listener) else { Issue.record("no connection to accept"); return }
        defer { Sys.close(server) }
        let memfd = try Sys.memfd("passed")
        try Sys.truncate(memfd, 123)
        try Sys.send(client, [1, 2, 3], fds: [memfd])
        Sys.close(memfd)
        var buffer = [UInt8](repeating: 0, count: 16)
        let got = try buffer.withUnsafeMutableBytes { try Sys.receive(server, into: $0, maxFDs: 2) }
        #expect(got?.count == 3 && got?.fds.count == 1)
        if let fd = got?.fds.first {
            #expect(try Sys.fileSize(fd) == 123)
            Sys.close(fd)
        }
        #expect(Sys.peerCredentials(server)?.pid == getpid())
        // nothing listens: ECONNREFUSED or ENOENT, as the attach loop expects
        #expect { _ = try Sys.connectUnix(dir + "/none.sock") } throws: { ($0 as? SysError)?.code == ENOENT }
    }

    /// inotify wakes a waiter when a file appears, well before its timeout.
    @Test func directoryWatchWakesOnCreate() throws {
        let dir = try Self.scratch()
        defer { _ = unlink(dir + "/new"); _ = rmdir(dir) }
        guard let watch = DirectoryWatch(dir) else { Issue.record("cannot watch \(dir)"); return }
        let path = dir + "/new"
        let t = Threads.spawn("creator") {
            Sys.sleep(nanos: 20_000_000)
            let fd = Glibc.open(path, O_CREAT | O_WRONLY, 0o600)
            if fd >= 0 { Glibc.close(fd) }
        }
        var woke = false
        for _ in 0..<50 where !woke {      // each wait ends on an event or after 100 ms
            watch.wait(timeoutMillis: 100)
            woke = access(path, F_OK) == 0
        }
        Threads.join(t)
        #expect(woke)
        let missing = DirectoryWatch("/nonexistent/lb-test")
        var none = true
        if missing != nil { none = false }
        #expect(none, "a directory that does not exist cannot be watched")
    }

    @Test func clocks() {
        let a = Sys.monoNanos()
        Sys.sleep(nanos: 1_000_000)
        let b = Sys.monoNanos()
        #expect(b > a)
        #expect(Sys.wallNanos() > 1_700_000_000 * 1_000_000_000)
    }
}
