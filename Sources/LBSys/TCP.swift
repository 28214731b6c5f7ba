import CLBShim
import Glibc

/// TCP listening sockets (the Prometheus endpoint).
extension Sys {
    /// Listens on an IPv4 or IPv6 address ("127.0.0.1", "0.0.0.0", "::1", "::"; "::" also takes
    /// IPv4 unless the system sets bindv6only) and port (0: any free port).
    /// Non-blocking, close-on-exec, SO_REUSEADDR. Returns the socket and the port it got.
    public static func listenTCP(address: String, port: UInt16, backlog: Int32 = 16) throws(SysError) -> (fd: Int32, port: UInt16) {
        var storage = sockaddr_storage()
        // fills `storage` as the sockaddr type A; body says whether the address parsed
        func fill<A>(_: A.Type, _ body: (inout A) -> Bool) -> Bool {
            withUnsafeMutablePointer(to: &storage) { p in p.withMemoryRebound(to: A.self, capacity: 1) { body(&$0.pointee) } }
        }
        let v6 = address.contains(":")
        let family = v6 ? AF_INET6 : AF_INET
        let length = v6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size
        let parsed = v6
            ? fill(sockaddr_in6.self) { a in
                a.sin6_family = sa_family_t(AF_INET6)
                a.sin6_port = port.bigEndian
                return inet_pton(AF_INET6, address, &a.sin6_addr) == 1
            }
            : fill(sockaddr_in.self) { a in
                a.sin_family = sa_family_t(AF_INET)
                a.sin_port = port.bigEndian
                return inet_pton(AF_INET, address, &a.sin_addr) == 1
            }
        guard parsed else { throw SysError("address \(address)", EINVAL) }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SysError("socket") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        try bindAndListen(fd, &storage, length: length, backlog: backlog, what: "\(address):\(port)")
        var got = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &got) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        // sin_port and sin6_port sit at the same offset
        let bound16 = withUnsafePointer(to: &got) { p in p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port } }
        return (fd, UInt16(bigEndian: bound16))
    }

    /// read(2) into `buffer`; nil on EAGAIN, 0 at end of file.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SysError) -> Int? {
        let n = retrying { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        if n >= 0 { return n }
        if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
        throw SysError("read")
    }

    /// Sets SO_SNDTIMEO (a blocking write gives up after this long).
    public static func setSendTimeout(_ fd: Int32, millis: Int) {
        var tv = timeval(tv_sec: millis / 1000, tv_usec: (millis % 1000) * 1000)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
}
