/// The flow a packet belongs to, as read from its innermost parsable headers.
///
/// Addresses are 128-bit (IPv4 is stored IPv4-mapped, `::ffff:a.b.c.d`), so the hash always
/// covers full IPv6 addresses. Link-layer keys (non-IP frames) store MAC addresses with the top
/// bit of `hi` set, so they never equal an IP key.
@frozen
public struct FlowKey: Equatable, Sendable {
    public var srcHi: UInt64
    public var srcLo: UInt64
    public var dstHi: UInt64
    public var dstLo: UInt64
    public var sport: UInt16
    public var dport: UInt16
    public var proto: UInt8
    public var kind: Kind

    @frozen
    public enum Kind: UInt8, Sendable {
        /// nothing could be read
        case none = 0
        /// link-layer addresses (non-IP frames)
        case link = 1
        /// addresses and protocol, no ports (non-first fragments, truncated L4, other protocols)
        case addresses = 2
        /// addresses, protocol and ports
        case ports = 3
    }

    @inlinable
    public init() {
        srcHi = 0; srcLo = 0; dstHi = 0; dstLo = 0
        sport = 0; dport = 0; proto = 0; kind = .none
    }

    @inlinable
    public static func v4Mapped(_ addr: UInt32) -> UInt64 { 0x0000_FFFF_0000_0000 | UInt64(addr) }

    /// Whether the addresses are IPv4 (stored IPv4-mapped).
    @inlinable
    public var isIPv4: Bool { srcHi == 0 && srcLo >> 32 == 0xFFFF }
}

/// Seeds for the flow hash, derived from one 64-bit seed.
@frozen
public struct HashSeeds: Sendable {
    public let k0, k1, k2, k3, k4, k5: UInt64

    public init(seed: UInt64) {
        var s = seed
        @inline(__always) func next(_ s: inout UInt64) -> UInt64 {   // splitmix64
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        k0 = next(&s); k1 = next(&s); k2 = next(&s); k3 = next(&s); k4 = next(&s); k5 = next(&s)
    }

    /// The seed lb uses unless told otherwise, so that independent lb instances with the same
    /// options agree on which worker gets a flow.
    public static let standard = HashSeeds(seed: 0x6C62_5F66_6C6F_7721)
}

/// The symmetric flow hash.
///
/// Each endpoint (address, port) is mixed on its own with 64x64->128-bit multiplications (the
/// "mum" step of wyhash), the two endpoint values are added, and the sum is mixed with the
/// protocol and the optional VLAN/VNI. Addition commutes, so A->B and B->A hash alike without a
/// comparison or a branch; the multiplications make the function non-linear, so unlike the
/// symmetric Toeplitz hash it has no structural collisions (flows with equal src^dst collide
/// there). A NIC-style XOR fold is never involved.
public enum FlowHash {
    @inlinable @inline(__always)
    static func mum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let r = a.multipliedFullWidth(by: b)
        return r.high ^ r.low
    }

    @inlinable @inline(__always)
    static func endpoint(_ hi: UInt64, _ lo: UInt64, _ port: UInt64, _ s: HashSeeds) -> UInt64 {
        mum(mum(hi ^ s.k0, lo ^ s.k1) ^ s.k2, port ^ s.k3)
    }

    /// Hash of `key` under `mode`; `extra` (VLAN id or VNI, 0 when not part of the key) is mixed
    /// in after the symmetric part.
    @inlinable @inline(__always)
    public static func hash(_ key: FlowKey, mode: TupleMode, extra: UInt32, seeds s: HashSeeds) -> UInt64 {
        var sp = UInt64(key.sport), dp = UInt64(key.dport), proto = UInt64(key.proto)
        if key.kind != .ports || mode != .five { sp = 0; dp = 0 }
        if mode == .two && key.kind != .link { proto = 0 }
        let a = endpoint(key.srcHi, key.srcLo, sp, s)
        let b = endpoint(key.dstHi, key.dstLo, dp, s)
        let link: UInt64 = key.kind == .link ? 1 << 8 : 0
        let tail = proto | link | UInt64(extra) << 32
        return mum((a &+ b) ^ s.k4, tail ^ s.k5)
    }

    /// `hash` for a key of kind `.ports`, with the tuple mode as masks: the ports are kept
    /// under `portMask` (0xFFFF for five-tuple, else 0), the protocol under `protoMask` (0 for
    /// two-tuple, else 0xFF).
    @inlinable @inline(__always)
    public static func hash(ports key: FlowKey, portMask: UInt64, protoMask: UInt64, extra: UInt32, seeds s: HashSeeds) -> UInt64 {
        let a = endpoint(key.srcHi, key.srcLo, UInt64(key.sport) & portMask, s)
        let b = endpoint(key.dstHi, key.dstLo, UInt64(key.dport) & portMask, s)
        let tail = UInt64(key.proto) & protoMask | UInt64(extra) << 32
        return mum((a &+ b) ^ s.k4, tail ^ s.k5)
    }
}
