import Glibc

/// Network interfaces, users, and lock files: what live ingress needs around its sockets.
extension Sys {
    /// if_nametoindex(3); nil when there is no such interface.
    public static func interfaceIndex(_ name: String) -> Int32? {
        let i = if_nametoindex(name)
        return i == 0 ? nil : Int32(i)
    }

    /// A small text file (sysfs, procfs), whole; nil when it cannot be read.
    public static func readSmallFile(_ path: String, limit: Int = 4096) -> String? {
        let fd = retrying { Glibc.open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var buf = [UInt8](repeating: 0, count: limit)
        let n = buf.withUnsafeMutableBytes { b in retrying { Glibc.read(fd, b.baseAddress, limit) } }
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n], as: UTF8.self)
    }

    /// Writes a small text file (a sysfs setting) in one write(2).
    public static func writeSmallFile(_ path: String, _ text: String) throws(SysError) {
        let fd = retrying { Glibc.open(path, O_WRONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw SysError("open \(path)", errno) }
        defer { Glibc.close(fd) }
        try write(fd, text)
    }

    /// MemAvailable of /proc/meminfo in bytes, or nil.
    public static func memAvailable() -> UInt64? {
        guard let text = readSmallFile("/proc/meminfo") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let f = line.split(separator: " ")
            if f.count >= 2, let kib = UInt64(f[1]) { return kib * 1024 }
        }
        return nil
    }

    /// A counter in /sys/class/net/IFACE/statistics (0 when absent).
    public static func interfaceCounter(_ iface: String, _ name: String) -> UInt64 {
        guard let s = readSmallFile("/sys/class/net/\(iface)/statistics/\(name)") else { return 0 }
        return UInt64(s.trimmingWhitespace) ?? 0
    }

    /// The inode of this process's network namespace (names an interface together with its name).
    public static func netnsInode() -> UInt64 {
        var st = stat()
        guard stat("/proc/self/ns/net", &st) == 0 else { return 0 }
        return UInt64(st.st_ino)
    }

    /// Opens (creating) `path` and takes an exclusive flock without waiting. Returns the fd
    /// holding the lock, or nil (with the pid written in the file) when another process holds it.
    public static func tryLockFile(_ path: String) throws(SysError) -> Int32? {
        let fd = retrying { Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        guard fd >= 0 else { throw SysError("open \(path)") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            Glibc.close(fd)
            if e == EWOULDBLOCK { return nil }
            throw SysError("flock \(path)", e)
        }
        _ = ftruncate(fd, 0)
        try? write(fd, "\(getpid())\n")
        return fd
    }

    /// uid and gid of a user name (or a numeric uid), nil if unknown.
    public static func lookupUser(_ name: String) -> (uid: UInt32, gid: UInt32)? {
        if let pw = getpwnam(name) { return (pw.pointee.pw_uid, pw.pointee.pw_gid) }
        if let n = UInt32(name) {
            if let pw = getpwuid(n) { return (pw.pointee.pw_uid, pw.pointee.pw_gid) }
            return (n, n)
        }
        return nil
    }

    /// Changes the owner of a path (for files lb made as root and keeps using after --user).
    public static func chown(_ path: String, uid: UInt32, gid: UInt32) { _ = Glibc.chown(path, uid, gid) }
}

extension String {
    public var trimmingWhitespace: String {
        var s = Substring(self)
        // Character.isWhitespace: "\r\n" is one Character, equal to neither "\r" nor "\n"
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

extension Sys {
    /// Unblocks signals in the calling thread (a parent may have started lb with them blocked;
    /// threads started afterwards inherit the mask).
    public static func unblockSignals(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
