import CLBShim
import Glibc

/// Unix SOCK_SEQPACKET sockets: the control channel between lb and its consumers.
extension Sys {
    static func unixAddress(_ path: String) throws(SysError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw SysError("socket path too long: \(path)", ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &addr.sun_path) { dst in
            for (i, b) in bytes.enumerated() { dst[i] = b }
        }
        return addr
    }

    static func withSockaddr<R>(_ addr: inout sockaddr_un, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    public static func seqpacketSocket() throws(SysError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SysError("socket") }
        return fd
    }

    /// bind(2) `fd` to `addr` (a sockaddr_* of `length` bytes), then listen(2); closes `fd` and
    /// throws (naming `what`) if either fails.
    /// `owner`: a path bound and given to this uid before anyone can connect to it.
    static func bindAndListen<A>(_ fd: Int32, _ addr: inout A, length: Int, backlog: Int32, what: String,
                                 owner: (path: String, uid: uid_t)? = nil) throws(SysError) {
        let bound = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
        }
        guard bound == 0 else {
            let e = SysError("bind \(what)")
            close(fd)
            throw e
        }
        if let owner, Glibc.chown(owner.path, owner.uid, gid_t.max) != 0 {
            let e = SysError("chown \(what)")
            close(fd)
            throw e
        }
        guard listen(fd, backlog) == 0 else {
            let e = SysError("listen \(what)")
            close(fd)
            throw e
        }
    }

    /// Binds and listens on `path`. The caller decides what to do about an existing path.
    /// A listening socket at `path`; with `owner`, the file is that uid's before it listens, so
    /// a client never finds it listening under another owner.
    public static func listenUnix(_ path: String, backlog: Int32 = 64, owner: uid_t? = nil) throws(SysError) -> Int32 {
        let fd = try seqpacketSocket()
        var addr = try unixAddress(path)
        try bindAndListen(fd, &addr, length: MemoryLayout<sockaddr_un>.size, backlog: backlog, what: path,
                          owner: owner.map { (path, $0) })
        return fd
    }

    public static func connectUnix(_ path: String) throws(SysError) -> Int32 {
        let fd = try seqpacketSocket()
        var addr = try unixAddress(path)
        guard retrying({ withSockaddr(&addr, { connect(fd, $0, $1) }) }) == 0 else {
            let e = SysError("connect \(path)")
            close(fd)
            throw e
        }
        return fd
    }

    /// Accepts a connection; nil when none is pending (EAGAIN).
    public static func accept(_ fd: Int32) throws(SysError) -> Int32? {
        let c = retrying { lb_shim_accept(fd) }
        if c >= 0 { return c }
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED { return nil }
        throw SysError("accept")
    }

    public static func setNonBlocking(_ fd: Int32, _ on: Bool) {
        _ = lb_shim_set_nonblock(fd, on ? 1 : 0)
    }

    public static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, fds: [Int32] = []) throws(SysError) {
        let n = fds.withUnsafeBufferPointer { lb_shim_send_with_fds(fd, bytes.baseAddress, bytes.count, $0.baseAddress, Int32($0.count)) }
        guard n == bytes.count else { throw SysError("sendmsg") }
    }

    public static func send(_ fd: Int32, _ bytes: [UInt8], fds: [Int32] = []) throws(SysError) {
        let n = bytes.withUnsafeBytes { b in
            fds.withUnsafeBufferPointer { lb_shim_send_with_fds(fd, b.baseAddress, b.count, $0.baseAddress, Int32($0.count)) }
        }
        guard n == bytes.count else { throw SysError("sendmsg") }
    }

    /// Receives one message and up to `maxFDs` descriptors. nil on EAGAIN; 0 bytes means
    /// the peer closed.
    public static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, maxFDs: Int = 2) throws(SysError) -> (count: Int, fds: [Int32])? {
        var fds = [Int32](repeating: -1, count: maxFDs)
        var got: Int32 = 0
        let n = fds.withUnsafeMutableBufferPointer { lb_shim_recv_with_fds(fd, buffer.baseAddress, buffer.count, $0.baseAddress, Int32(maxFDs), &got) }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
            throw SysError("recvmsg")
        }
        return (n, Array(fds.prefix(Int(got))))
    }

    public static func peerCredentials(_ fd: Int32) -> (pid: pid_t, uid: uid_t, gid: gid_t)? {
        var pid: pid_t = 0, uid: uid_t = 0, gid: gid_t = 0
        guard lb_shim_peer_cred(fd, &pid, &uid, &gid) == 0 else { return nil }
        return (pid, uid, gid)
    }

    /// poll(2) on the given descriptors; returns revents per descriptor (0 on timeout).
    public static func poll(_ fds: inout [pollfd], timeoutMillis: Int32) throws(SysError) {
        let n = fds.withUnsafeMutableBufferPointer { Glibc.poll($0.baseAddress, nfds_t($0.count), timeoutMillis) }
        if n < 0 && errno != EINTR { throw SysError("poll") }
        if n < 0 { for i in fds.indices { fds[i].revents = 0 } }
    }

    /// Whether one descriptor has something to read or was hung up (poll(2) without waiting;
    /// no allocation, for loops that look often).
    public static func readable(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&p, 1, 0) > 0 && p.revents != 0
    }
}
