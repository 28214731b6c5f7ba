import CLBShim
import Glibc

/// One entry of a recvmmsg/sendmmsg vector: the layout of C's `struct mmsghdr` (64 bytes,
/// checked by a _Static_assert in the shim).
public struct MMsgHdr {
    public var hdr = msghdr()
    public var len: UInt32 = 0
    public init() {}
}

/// UDP sockets for the `udp::` ingress: one wrapper per call, EINTR retried, EAGAIN a value.
extension Sys {
    /// A non-blocking, close-on-exec UDP socket.
    public static func udpSocket(ipv6: Bool) throws(SysError) -> Int32 {
        let fd = socket(ipv6 ? AF_INET6 : AF_INET,
                        Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SysError("socket(UDP)") }
        return fd
    }

    public static func setSocketOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ what: String) throws(SysError) {
        var v = value
        guard setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) == 0 else { throw SysError("setsockopt(\(what))") }
    }

    public static func socketOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ what: String) throws(SysError) -> Int32 {
        var v: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, level, name, &v, &len) == 0 else { throw SysError("getsockopt(\(what))") }
        return v
    }

    /// Binds to a numeric address (4 or 16 bytes, network order) and port (host order; 0 picks one).
    public static func bindUDP(_ fd: Int32, address: [UInt8], port: UInt16) throws(SysError) {
        let r: Int32
        if address.count == 16 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &a.sin6_addr) { for i in 0..<16 { $0[i] = address[i] } }
            r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &a.sin_addr) { for i in 0..<4 { $0[i] = address[i] } }
            r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard r == 0 else { throw SysError("bind") }
    }

    /// The port a socket is bound to (host order).
    public static func localPort(_ fd: Int32) throws(SysError) -> UInt16 {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &ss) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        guard r == 0 else { throw SysError("getsockname") }
        return withUnsafeBytes(of: &ss) { UInt16(bigEndian: $0.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) }
    }

    /// recvmmsg without waiting: how many messages were received, 0 when none is pending.
    @inline(__always)
    public static func receiveMessages(_ fd: Int32, _ msgs: UnsafeMutablePointer<MMsgHdr>, count: Int) throws(SysError) -> Int {
        let n = lb_shim_recvmmsg(fd, msgs, UInt32(truncatingIfNeeded: count), Int32(MSG_DONTWAIT))
        if n >= 0 { return Int(n) }
        if errno == EAGAIN || errno == EWOULDBLOCK { return 0 }
        throw SysError("recvmmsg")
    }

    /// sendmmsg: how many messages were sent (0 when the socket buffer is full).
    public static func sendMessages(_ fd: Int32, _ msgs: UnsafeMutablePointer<MMsgHdr>, count: Int) throws(SysError) -> Int {
        let n = lb_shim_sendmmsg(fd, msgs, UInt32(truncatingIfNeeded: count), 0)
        if n >= 0 { return Int(n) }
        if errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS { return 0 }
        throw SysError("sendmmsg")
    }

    /// Waits until `fd` is readable or `timeoutMillis` passed (or a signal came); true if readable.
    public static func waitReadable(_ fd: Int32, timeoutMillis: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&p, 1, timeoutMillis) > 0 && p.revents & Int16(POLLIN) != 0
    }
}

/// A datagram's peer: its address (16 bytes, IPv4 mapped) and port, and the raw sockaddr to answer it.
public struct DatagramPeer: Sendable {
    public var storage = sockaddr_storage()
    public var length = socklen_t(0)

    /// The peer at `address` (4 or 16 bytes, network order) and `port`.
    public init(address: [UInt8], port: UInt16) {
        withUnsafeMutableBytes(of: &storage) { b in
            if address.count == 16 {
                b.storeBytes(of: sa_family_t(AF_INET6), toByteOffset: 0, as: sa_family_t.self)
                b.storeBytes(of: port.bigEndian, toByteOffset: 2, as: UInt16.self)
                for i in 0..<16 { b[8 + i] = address[i] }
            } else {
                b.storeBytes(of: sa_family_t(AF_INET), toByteOffset: 0, as: sa_family_t.self)
                b.storeBytes(of: port.bigEndian, toByteOffset: 2, as: UInt16.self)
                for i in 0..<4 { b[4 + i] = address[i] }
            }
        }
        length = socklen_t(address.count == 16 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
    }
    /// the sender's address as text
    public var address: String {
        var s = storage
        return withUnsafeBytes(of: &s) { b in
            let family = b.loadUnaligned(fromByteOffset: 0, as: sa_family_t.self)
            if family == sa_family_t(AF_INET) {
                let a = UInt32(bigEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                return Sys.formatAddress(hi: 0, lo: 0x0000_FFFF_0000_0000 | UInt64(a))
            }
            var hi: UInt64 = 0, lo: UInt64 = 0
            for i in 0..<8 { hi = hi << 8 | UInt64(b[8 + i]) }
            for i in 0..<8 { lo = lo << 8 | UInt64(b[16 + i]) }
            return Sys.formatAddress(hi: hi, lo: lo)
        }
    }
    public init() {}
}

extension Sys {
    /// recvfrom(2) without blocking: the datagram's length and sender, or nil when none waits.
    public static func receiveDatagram(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SysError) -> (count: Int, peer: DatagramPeer)? {
        var peer = DatagramPeer()
        peer.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let n = retrying {
            withUnsafeMutablePointer(to: &peer.storage) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT), $0, &peer.length) }
            }
        }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
            throw SysError("recvfrom")
        }
        return (n, peer)
    }

    /// sendto(2) without blocking; a datagram the socket has no room for is not sent (false).
    @discardableResult
    public static func sendDatagram(_ fd: Int32, _ bytes: [UInt8], to peer: DatagramPeer) -> Bool {
        var p = peer
        let n = bytes.withUnsafeBytes { b in
            withUnsafePointer(to: &p.storage) { s in
                s.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, b.baseAddress, b.count, Int32(MSG_DONTWAIT), $0, p.length) }
            }
        }
        return n == bytes.count
    }
}
