import Glibc
import LBSys
import Testing

/// DirectoryWatch (inotify), what a consumer waits on while lb's socket does not exist yet.
@Suite struct DirectoryWatchTests {
    static func scratch() throws -> String {
        var template = Array("/tmp/lbsys-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw SysError("mkdtemp") }
        return String(cString: p)
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
}
