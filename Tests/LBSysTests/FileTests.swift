import CLBShim
import Glibc
import LBSys
import LBTestSupport
import Testing

/// A directory under /tmp for one test, removed afterwards (LBSys's own calls make it).
final class TempDir {
    let path: String
    init(_ tag: String) throws {
        var template = Array("/tmp/lbsys-\(tag)-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else { throw SysError("mkdtemp") }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    deinit { _ = system("rm -rf '\(path)'") }
}

/// The file and memory wrappers against the real syscalls: what they return, the flags they
/// add, and the errno a failure carries.
@Suite struct FileTests {
    @Test func openAddsCloseOnExecAndNamesThePathOnFailure() throws {
        let dir = try TempDir("open")
        let fd = try Sys.open(dir.path + "/f", O_RDWR | O_CREAT, mode: 0o600)
        defer { Sys.close(fd) }
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
        var st = stat()
        #expect(stat(dir.path + "/f", &st) == 0 && st.st_mode & 0o777 == 0o600)
        do {
            _ = try Sys.open(dir.path + "/missing", O_RDONLY)
            Issue.record("opened a missing file")
        } catch {
            #expect(error.code == ENOENT)
            #expect(error.call == "open \(dir.path)/missing")
            #expect(error.description.hasSuffix("No such file or directory"), "\(error)")
        }
    }

    @Test func writeAllSizeAndTruncate() throws {
        let dir = try TempDir("write")
        let fd = try Sys.open(dir.path + "/f", O_RDWR | O_CREAT, mode: 0o644)
        defer { Sys.close(fd) }
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 31) }
        try bytes.withUnsafeBytes { try Sys.writeAll(fd, $0) }
        try Sys.write(fd, "tail")
        #expect(try Sys.fileSize(fd) == 100_004)
        var back = [UInt8](repeating: 0, count: 100_004)
        #expect(back.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) } == 100_004)
        #expect(Array(back.prefix(100_000)) == bytes && Array(back.suffix(4)) == Array("tail".utf8))
        try Sys.truncate(fd, 10)
        #expect(try Sys.fileSize(fd) == 10)
        let ro = try Sys.open(dir.path + "/f", O_RDONLY)
        defer { Sys.close(ro) }
        #expect(throws: SysError("ftruncate", EINVAL)) { try Sys.truncate(ro, 0) }
        #expect(throws: SysError("write", EBADF)) { try Sys.write(ro, "x") }
    }

    /// writev with more segments than IOV_MAX and a short write in the middle of a segment
    /// (a pipe that takes less than was offered).
    @Test func writevOfManySegmentsThroughAPipe() throws {
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        defer { close(p[0]); close(p[1]) }
        let count = 3000
        let data = (0..<count * 7).map { UInt8(truncatingIfNeeded: $0) }
        let reader = Threads.spawn("reader") { [p] in
            var got = 0
            var buf = [UInt8](repeating: 0, count: 4096)
            while got < 3000 * 7 {
                let n = buf.withUnsafeMutableBytes { read(p[0], $0.baseAddress, $0.count) }
                if n <= 0 { break }
                got += n
            }
            precondition(got == 3000 * 7)
        }
        try data.withUnsafeBytes { b in
            let segments = UnsafeMutablePointer<iovec>.allocate(capacity: count)
            defer { segments.deallocate() }
            for i in 0..<count {
                segments[i] = iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress! + i * 7), iov_len: 7)
            }
            try Sys.writeAll(p[1], segments, count: count)
        }
        Threads.join(reader)
    }

    @Test func writingToAPipeWithoutAReaderIsEPIPE() throws {
        signal(SIGPIPE, SIG_IGN)
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        close(p[0])
        defer { close(p[1]) }
        #expect(throws: SysError("write", EPIPE)) { try Sys.write(p[1], "nobody reads this") }
    }

    @Test func mkdirsMakesEveryLevelAndRefusesAFileInTheWay() throws {
        let dir = try TempDir("mkdirs")
        try Sys.mkdirs(dir.path + "/a/b/c", mode: 0o700)
        var st = stat()
        #expect(stat(dir.path + "/a/b/c", &st) == 0 && st.st_mode & S_IFMT == S_IFDIR && st.st_mode & 0o777 == 0o700)
        try Sys.mkdirs(dir.path + "/a/b/c")           // again: nothing to do, no error
        let fd = try Sys.open(dir.path + "/file", O_WRONLY | O_CREAT, mode: 0o644)
        Sys.close(fd)
        #expect(throws: SysError("mkdir", ENOTDIR)) { try Sys.mkdirs(dir.path + "/file") }
        #expect(throws: SysError("mkdir", ENOTDIR)) { try Sys.mkdirs(dir.path + "/file/sub") }
    }

    /// A sealed memfd: its size is fixed; with futureWrite no new writable mapping can be made,
    /// while the one made before stays writable and shows through a read-only one.
    @Test func memfdSealAndMappings() throws {
        let fd = try Sys.memfd("lbsys-test")
        defer { Sys.close(fd) }
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
        try Sys.truncate(fd, 8192)
        let w = try Sys.map(fd, size: 8192, writable: true, populate: true)
        defer { Sys.unmap(w, size: 8192) }
        try Sys.seal(fd, futureWrite: true)
        #expect(throws: SysError("ftruncate", EPERM)) { try Sys.truncate(fd, 4096) }
        #expect(throws: SysError("mmap", EPERM)) { _ = try Sys.map(fd, size: 8192, writable: true) }
        let r = try Sys.map(fd, size: 8192, writable: false)
        defer { Sys.unmap(r, size: 8192) }
        w.storeBytes(of: 0xDEAD_BEEF, toByteOffset: 4096, as: UInt32.self)
        #expect(r.load(fromByteOffset: 4096, as: UInt32.self) == 0xDEAD_BEEF)
        // F_SEAL_SHRINK 0x2, F_SEAL_GROW 0x4, F_SEAL_FUTURE_WRITE 0x10 (linux/fcntl.h)
        #expect(lb_shim_get_seals(fd) & 0x16 == 0x16)
    }

    @Test func mapFileIsAPrivateCopy() throws {
        let dir = try TempDir("mapfile")
        let fd = try Sys.open(dir.path + "/f", O_RDWR | O_CREAT, mode: 0o644)
        defer { Sys.close(fd) }
        try Sys.write(fd, "capture bytes")
        let p = try Sys.mapFile(fd, size: 13)
        defer { Sys.unmap(p, size: 13) }
        #expect(String(decoding: UnsafeRawBufferPointer(start: p, count: 13), as: UTF8.self) == "capture bytes")
        #expect(throws: SysError("mmap", EINVAL)) { _ = try Sys.mapFile(fd, size: 0) }
    }

    @Test func smallFilesAndLockFiles() throws {
        let dir = try TempDir("small")
        #expect(Sys.readSmallFile(dir.path + "/missing") == nil)
        #expect(Sys.readSmallFile("/proc/self/stat")?.hasPrefix("\(getpid()) (") == true)
        #expect(Sys.readSmallFile("/proc/self/stat", limit: 3)?.count == 3)
        #expect(throws: SysError("open \(dir.path)/none/x", ENOENT)) { try Sys.writeSmallFile(dir.path + "/none/x", "1") }
        // flock is per open file: a second open in the same process is refused as another would be
        let lock = dir.path + "/lb.lock"
        let held = try Sys.tryLockFile(lock)
        #expect(held != nil)
        #expect(Sys.readSmallFile(lock) == "\(getpid())\n")
        #expect(try Sys.tryLockFile(lock) == nil)
        Sys.close(held!)
        // a child another test forks in parallel holds a copy of the descriptor until its exec
        // (O_CLOEXEC closes it there): the lock is free again within moments, not necessarily at once
        var again: Int32? = nil
        #expect(try eventually(5) { again = try Sys.tryLockFile(lock); return again != nil })
        if let again { Sys.close(again) }
        #expect(throws: SysError("open \(dir.path)/none/lock", ENOENT)) { _ = try Sys.tryLockFile(dir.path + "/none/lock") }
    }
}
