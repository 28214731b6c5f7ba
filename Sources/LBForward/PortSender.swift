import CLBXdp
import Glibc
import LBSys

/// How a tool port's frames leave: `send` takes frames `0..<count` (at base + offsets[i],
/// lengths[i] bytes) in order and returns how many went; 0: full for now, try again.
protocol FrameSender: ~Copyable {
    func send(base: UnsafePointer<UInt8>, offsets: UnsafePointer<UInt64>, lengths: UnsafePointer<UInt32>, count: Int) throws(SysError) -> Int
    /// "AF_XDP TX (copy mode)", ... for the log
    var kind: String { get }
    /// frames the device dropped after `send` had counted them as sent, so far
    var dropped: UInt64 { get }
    /// lets every frame handed over leave; returns those that could not (given up after a
    /// second without progress)
    func flush() -> UInt64
}

extension PacketSender: FrameSender {
    var kind: String { "AF_PACKET" }
    /// none: a frame the device refuses is an error of its send (ENOBUFS), and sent again
    var dropped: UInt64 { 0 }
    /// nothing held: a send returns when the kernel has the frame
    func flush() -> UInt64 { 0 }
}

/// `--forward-port-tx`: how tool ports send.
public enum PortTX: String, Sendable, CaseIterable {
    /// AF_XDP TX where the driver sends from the socket's ring itself (zero-copy), else
    /// AF_PACKET: in copy mode a device that refuses a frame (a veth whose peer is busy) loses
    /// it, where AF_PACKET's send fails and is tried again
    case auto
    case afXDP = "af_xdp"
    case afPacket = "af_packet"
}

/// An AF_XDP socket that only sends, on queue 0 of the port, with its own UMEM; frames larger
/// than a UMEM frame (4 KiB: jumbo frames) go through an AF_PACKET socket on the same port, in
/// order.
struct XSKSender: FrameSender, ~Copyable {
    let handle: OpaquePointer
    let large: PacketSender
    static let frames: UInt32 = 2048, frameSize: UInt32 = 4096

    init(interface: String, index: Int32, zeroCopyOnly: Bool) throws(SysError) {
        var err = [CChar](repeating: 0, count: 512)
        var s: OpaquePointer? = nil
        let rc = lbx_xsk_tx_open(interface, 0, Self.frames, Self.frameSize, zeroCopyOnly ? 1 : 0, &s, &err, err.count)
        guard rc == 0, let s else {
            throw SysError(err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }, -rc)
        }
        do { large = try PacketSender(interfaceIndex: index, qdiscBypass: false, sendBuffer: 1 << 20) } catch {
            lbx_xsk_tx_close(s)
            throw error
        }
        handle = s
    }

    deinit { lbx_xsk_tx_close(handle) }

    var kind: String { lbx_xsk_tx_zerocopy(handle) != 0 ? "AF_XDP TX (zero-copy)" : "AF_XDP TX (copy mode)" }
    var dropped: UInt64 { lbx_xsk_tx_dropped(handle) }
    func flush() -> UInt64 { UInt64(lbx_xsk_tx_flush(handle, 1000)) }

    func send(base: UnsafePointer<UInt8>, offsets: UnsafePointer<UInt64>, lengths: UnsafePointer<UInt32>, count: Int) throws(SysError) -> Int {
        let n = lbx_xsk_tx_send(handle, base, offsets, lengths, UInt32(truncatingIfNeeded: count))
        if n >= 0 { return Int(n) }
        if n == -EMSGSIZE { return try large.send(base: base, offsets: offsets, lengths: lengths, count: 1) }
        throw SysError("AF_XDP send", -n)
    }
}
