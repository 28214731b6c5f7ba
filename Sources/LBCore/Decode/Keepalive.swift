/// The keepalive between a forwarding lb and the lb it forwards to (docs/scale-out.md): a
/// 16-byte UDP datagram to the receiver's udp:: port, "LBKA" and 12 bytes of the sender's
/// choosing; the receiver sends it back with "LBOK" in front. It cannot be taken for VXLAN or
/// GENEVE (their first byte would be 0x4C, a VXLAN flags byte with reserved bits set and a
/// GENEVE version of 1).
public enum Keepalive {
    public static let length = 16
    static let probe: UInt32 = 0x4C42_4B41    // "LBKA"
    static let reply: UInt32 = 0x4C42_4F4B    // "LBOK"

    @inline(__always)
    public static func isProbe(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count == length && UInt32(bigEndian: b.loadUnaligned(as: UInt32.self)) == probe
    }

    public static func isReply(_ b: UnsafeRawBufferPointer) -> Bool {
        b.count == length && UInt32(bigEndian: b.loadUnaligned(as: UInt32.self)) == reply
    }

    /// Turns a probe into its answer, in place.
    public static func answer(_ p: UnsafeMutableRawPointer) { p.storeBytes(of: reply.bigEndian, as: UInt32.self) }

    /// A probe carrying `sequence` (and 4 zero bytes).
    public static func probe(sequence: UInt64) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        for i in 0..<4 { out[i] = UInt8(truncatingIfNeeded: probe >> UInt32(24 - 8 * i)) }
        for i in 0..<8 { out[4 + i] = UInt8(truncatingIfNeeded: sequence >> UInt64(56 - 8 * i)) }
        return out
    }

    /// The sequence an answer carries.
    public static func sequence(_ b: UnsafeRawBufferPointer) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(b[4 + i]) }
        return v
    }
}
