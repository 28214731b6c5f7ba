import CLBShim
import Glibc

/// A raw UDP socket connected to one remote host, for forwarding a group to it inside VXLAN
/// (docs/scale-out.md): lb writes each datagram's UDP header (its own source port per flow),
/// the kernel the IP header; datagrams over the path MTU are fragmented by the kernel.
public struct ForwardSocket: ~Copyable {
    public let fd: Int32
    public let ipv6: Bool

    /// `address`: 4 bytes (IPv4) or 16 (IPv6), network order.
    public init(address: [UInt8], sendBuffer: Int) throws(SysError) {
        let v6 = address.count == 16
        let fd = address.withUnsafeBufferPointer { lb_shim_forward_socket(v6 ? 1 : 0, $0.baseAddress, Int32(clamping: sendBuffer)) }
        guard fd >= 0 else { throw SysError("raw UDP socket to the forwarding target") }
        self.fd = fd
        ipv6 = v6
    }

    deinit { Sys.close(fd) }

    /// The path MTU the kernel knows for the target (the interface's MTU until it learns less).
    public var pathMTU: Int? {
        let m = lb_shim_forward_path_mtu(fd, ipv6 ? 1 : 0)
        return m > 0 ? Int(m) : nil
    }

    /// Sends datagrams `0..<count` of the arrays (UDP header and payload each), in order;
    /// returns how many went. 0 means the socket buffer or the device was full: try again.
    @inline(__always)
    public func send(base: UnsafePointer<UInt8>, offsets: UnsafePointer<UInt64>, lengths: UnsafePointer<UInt32>,
                     count: Int) throws(SysError) -> Int {
        try Sys.sendBatch(fd, base: base, offsets: offsets, lengths: lengths, count: count)
    }
}

extension Sys {
    /// sendto(2) to the peer named by a sockaddr (`name`, `length` bytes), without blocking.
    @discardableResult
    public static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, toName name: UnsafeRawPointer, length: Int) -> Bool {
        lb_shim_send_to(fd, bytes.baseAddress, bytes.count, name, UInt32(length)) == bytes.count
    }
}
