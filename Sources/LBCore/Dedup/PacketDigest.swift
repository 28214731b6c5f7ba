// The digest deduplication compares packets by (docs/dedup.md): a 64-bit hash of the innermost
// IP packet, from its first header byte to the end its own length gives (Ethernet padding and
// outer headers are not part of it), with the bytes that differ between copies of one packet
// masked: IPv4 TTL and header checksum, IPv6 hop limit. MAC addresses, VLAN tags and removed
// tunnels are outside the range, so they do not count either.
//
// wyhash-style: 16 bytes per step, each pair of words multiplied to 128 bits and folded.
// Pure, no allocation: loads are unaligned and bounded by the caller's range.

public enum PacketDigest {
    @usableFromInline static let s0: UInt64 = 0xa076_1d64_78bd_642f
    @usableFromInline static let s1: UInt64 = 0xe703_7ed1_a0b4_28db
    @usableFromInline static let s2: UInt64 = 0x8ebc_6af0_9c88_c6e3
    @usableFromInline static let s3: UInt64 = 0x5899_65cc_7537_4cc3

    /// IPv4: bytes 8 (TTL), 10 and 11 (header checksum) of the second little-endian word.
    @usableFromInline static let v4Mask: UInt64 = ~0x0000_0000_FFFF_00FF
    /// IPv6: byte 7 (hop limit) of the first little-endian word.
    @usableFromInline static let v6Mask: UInt64 = 0x00FF_FFFF_FFFF_FFFF

    @inlinable @inline(__always)
    static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (hi, lo) = a.multipliedFullWidth(by: b)
        return hi ^ lo
    }

    /// The digest of the IP packet at `p[l3...]` with at most `end - l3` bytes there: its
    /// length is the IPv4 total length or IPv6 payload length + 40, cut to what is there.
    /// Anything else (not version 4 or 6, too short for its header) is digested as plain
    /// bytes up to `end`.
    @inlinable
    public static func ip(_ p: UnsafeRawPointer, l3: Int, end: Int) -> UInt64 {
        let avail = end &- l3
        guard avail > 0 else { return bytes(p, from: l3, count: 0, seed: 0) }
        let q = p + l3
        let version = q.load(as: UInt8.self) >> 4
        var len = avail
        var m0: UInt64 = ~0, m1: UInt64 = ~0
        if version == 4 && avail >= 20 {
            let total = Int(UInt16(q.load(fromByteOffset: 2, as: UInt8.self)) << 8 | UInt16(q.load(fromByteOffset: 3, as: UInt8.self)))
            if total >= 20 && total < len { len = total }
            m1 = v4Mask
        } else if version == 6 && avail >= 40 {
            let plen = Int(UInt16(q.load(fromByteOffset: 4, as: UInt8.self)) << 8 | UInt16(q.load(fromByteOffset: 5, as: UInt8.self)))
            if plen != 0 && 40 &+ plen < len { len = 40 &+ plen }
            m0 = v6Mask
        }
        return hash(q, count: len, m0: m0, m1: m1, seed: 0x49)
    }

    /// The digest of `count` bytes at `p[from...]` (non-IP frames: from the EtherType on),
    /// with `seed` mixed in (e.g. a synthesized EtherType).
    @inlinable
    public static func bytes(_ p: UnsafeRawPointer, from: Int, count: Int, seed: UInt64) -> UInt64 {
        hash(p + from, count: count, m0: ~0, m1: ~0, seed: seed &+ 0x4E)
    }

    /// The hash itself: the first 16 bytes are ANDed with `m0`/`m1` (little-endian words).
    @inlinable @inline(__always)
    static func hash(_ q: UnsafeRawPointer, count n: Int, m0: UInt64, m1: UInt64, seed: UInt64) -> UInt64 {
        var acc = mix(seed ^ s0, UInt64(truncatingIfNeeded: n) ^ s1)
        var a: UInt64, b: UInt64
        if n >= 16 {
            a = q.loadUnaligned(as: UInt64.self) & m0
            b = q.loadUnaligned(fromByteOffset: 8, as: UInt64.self) & m1
            acc = mix(a ^ s1, b ^ acc)
            var i = 16
            while n &- i > 16 {
                a = q.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                b = q.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self)
                acc = mix(a ^ s2, b ^ acc)
                i &+= 16
            }
            if n >= 32 {
                // the last 16 bytes, overlapping what was mixed (never the masked first 16)
                a = q.loadUnaligned(fromByteOffset: n &- 16, as: UInt64.self)
                b = q.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
                acc = mix(a ^ s3, b ^ acc)
            } else if n > 16 {
                (a, b) = padded(q + 16, count: n &- 16)
                acc = mix(a ^ s3, b ^ acc)
            }
        } else {
            (a, b) = padded(q, count: n)
            acc = mix((a & m0) ^ s1, (b & m1) ^ acc)
        }
        return mix(acc ^ s0, UInt64(truncatingIfNeeded: n) ^ s3 ^ seed)
    }

    /// Up to 16 bytes as two zero-padded little-endian words (short packets only).
    @inlinable
    static func padded(_ q: UnsafeRawPointer, count n: Int) -> (UInt64, UInt64) {
        var a: UInt64 = 0, b: UInt64 = 0
        var i = 0
        while i < n {
            let v = UInt64(q.load(fromByteOffset: i, as: UInt8.self))
            if i < 8 { a |= v << UInt64(i &* 8) } else { b |= v << UInt64((i &- 8) &* 8) }
            i &+= 1
        }
        return (a, b)
    }
}
