import CLBShim
import Glibc

/// Thin wrappers around the file and memory syscalls lb uses. Each retries EINTR and throws
/// a SysError carrying the errno read right after the call.
public enum Sys {
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(SysError) -> Int32 {
        let fd = retrying { Glibc.open(path, flags | O_CLOEXEC, mode) }
        guard fd >= 0 else { throw SysError("open \(path)") }
        return fd
    }

    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)       // never retried: the descriptor is gone either way on Linux
    }

    public static func fileSize(_ fd: Int32) throws(SysError) -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SysError("fstat") }
        return Int(st.st_size)
    }

    /// Which file a descriptor or path names, and how big it is: a capture replay compares the
    /// two to notice a file that shrank, grew or was replaced under it.
    public struct FileIdentity: Equatable, Sendable {
        public var device: UInt64
        public var inode: UInt64
        public var size: Int
    }

    public static func identity(_ fd: Int32) throws(SysError) -> FileIdentity {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SysError("fstat") }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int(st.st_size))
    }

    public static func identity(path: String) throws(SysError) -> FileIdentity {
        var st = stat()
        guard lstatFollowing(path, &st) == 0 else { throw SysError("stat \(path)") }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int(st.st_size))
    }

    /// stat(2): Swift sees only the type `stat`, so the function is reached through fstatat.
    static func lstatFollowing(_ path: String, _ st: inout stat) -> Int32 { fstatat(AT_FDCWD, path, &st, 0) }

    /// read(2) at a file offset: how many bytes were read (0 at the end of the file).
    public static func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(SysError) -> Int {
        let n = retrying { Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
        guard n >= 0 else { throw SysError("pread") }
        return n
    }

    public static func truncate(_ fd: Int32, _ size: Int) throws(SysError) {
        guard retrying({ ftruncate(fd, off_t(size)) }) == 0 else { throw SysError("ftruncate") }
    }

    public static func unlink(_ path: String) { _ = Glibc.unlink(path) }

    public static func mkdirs(_ path: String, mode: mode_t = 0o755) throws(SysError) {
        // A relative path stays relative: "./run" is made under the current directory.
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + part
            guard Glibc.mkdir(prefix, mode) != 0 else { continue }
            guard errno == EEXIST else { throw SysError("mkdir \(prefix)") }
            // what exists must be a directory (following links), or the path cannot be made
            var st = stat()
            guard stat(prefix, &st) == 0 else { throw SysError("stat \(prefix)") }
            guard st.st_mode & S_IFMT == S_IFDIR else { throw SysError("mkdir \(prefix)", ENOTDIR) }
        }
    }

    /// Writes all of `buffer`, retrying short writes. Returns false on EPIPE (reader gone).
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(SysError) {
        var done = 0
        while done < buffer.count {
            let n = retrying { Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done) }
            guard n >= 0 else { throw SysError("write") }
            done += n
        }
    }

    /// writev(2) of `count` segments (1024 at a time, Linux's IOV_MAX), retrying short writes
    /// (the segments are advanced in place, so they are spent afterwards).
    public static func writeAll(_ fd: Int32, _ segments: UnsafeMutablePointer<iovec>, count: Int) throws(SysError) {
        var first = 0
        while first < count {
            let n = retrying { Glibc.writev(fd, segments + first, Int32(min(count - first, 1024))) }
            guard n >= 0 else { throw SysError("writev") }
            var left = n
            while first < count && left >= segments[first].iov_len {
                left -= segments[first].iov_len
                first += 1
            }
            if left > 0 {
                segments[first].iov_base = segments[first].iov_base! + left
                segments[first].iov_len -= left
            }
        }
    }

    public static func write(_ fd: Int32, _ text: String) throws(SysError) {
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { b in Result { () throws(SysError) in try writeAll(fd, b) } }
        try result.get()
    }

    /// Whether `path` has the extended attribute `name` (e.g. security.capability).
    public static func hasXattr(_ path: String, _ name: String) -> Bool { lb_shim_xattr_size(path, name) > 0 }

    public static func memfd(_ name: String) throws(SysError) -> Int32 {
        let fd = lb_shim_memfd_create(name)
        guard fd >= 0 else { throw SysError("memfd_create") }
        return fd
    }

    /// Seals a memfd against resizing; with `futureWrite`, against new writable mappings too.
    public static func seal(_ fd: Int32, futureWrite: Bool) throws(SysError) {
        guard lb_shim_seal(fd, futureWrite ? 1 : 0) == 0 else { throw SysError("fcntl(F_ADD_SEALS)") }
    }

    public static func map(_ fd: Int32, size: Int, writable: Bool, populate: Bool = false) throws(SysError) -> UnsafeMutableRawPointer {
        let prot = writable ? PROT_READ | PROT_WRITE : PROT_READ
        let flags = MAP_SHARED | (populate ? MAP_POPULATE : 0)
        guard let p = mmap(nil, size, prot, flags, fd, 0), p != MAP_FAILED else { throw SysError("mmap") }
        return p
    }

    /// A private read-only mapping of a whole file (capture files).
    public static func mapFile(_ fd: Int32, size: Int) throws(SysError) -> UnsafeMutableRawPointer {
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else { throw SysError("mmap") }
        _ = madvise(p, size, MADV_SEQUENTIAL)
        return p
    }

    public static func unmap(_ p: UnsafeMutableRawPointer, size: Int) { _ = munmap(p, size) }

    public static func adviseHugePages(_ p: UnsafeMutableRawPointer, size: Int) { _ = madvise(p, size, MADV_HUGEPAGE) }
}
