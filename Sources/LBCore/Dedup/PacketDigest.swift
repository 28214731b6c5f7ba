// The digest deduplication compares packets by (docs/dedup.md): a 64-bit hash of the innermost
// IP packet, from its first header byte to the end its own length gives (Ethernet padding and
// outer headers are not part of it), with the bytes that differ between copies of one packet
// masked: IPv4 TTL and header checksum, IPv6 hop limit. MAC addresses, VLAN tags and removed
// tunnels are outside the range, so they do not count either.
//
// wyhash-style: each pair of words, keyed, multiplied to 128 bits and folded; 64 bytes per
// step in four lanes. Pure, no allocation: loads are unaligned and bounded by the caller's
// range. Keyed by a secret each process draws (PacketDigestKey).

/// The digest's secret: four words a process draws at start (`DedupTable`), so that nobody
/// who reads this code can make two different packets digest alike (a multiply by a data
/// word equal to a known secret would erase what came before it).
@frozen
public struct PacketDigestKey: Sendable, Equatable {
    public var k0: UInt64, k1: UInt64, k2: UInt64, k3: UInt64

    /// The key made from `seed` (splitmix64).
    public init(seed: UInt64) {
        var m = SplitMix64(seed: seed)
        // odd: each key word is a multiplier, and an odd one loses no low bit
        k0 = m.next() | 1; k1 = m.next() | 1; k2 = m.next() | 1; k3 = m.next() | 1
    }

    /// A fixed key (tests, and digests that must agree between runs).
    public static let standard = PacketDigestKey(seed: 0xa076_1d64_78bd_642f)
}

public enum PacketDigest {
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
    public static func ip(_ p: UnsafeRawPointer, l3: Int, end: Int, key: PacketDigestKey = .standard) -> UInt64 {
        let avail = end &- l3
        guard avail > 0 else { return hash(p, count: 0, m0: ~0, m1: ~0, seed: 0x49, key: key) }
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
        return hash(q, count: len, m0: m0, m1: m1, seed: 0x49, key: key)
    }

    /// The digest of `count` bytes at `p[from...]` (non-IP frames: from the EtherType on),
    /// with `seed` mixed in (e.g. a synthesized EtherType).
    @inlinable
    public static func bytes(_ p: UnsafeRawPointer, from: Int, count: Int, seed: UInt64, key: PacketDigestKey = .standard) -> UInt64 {
        hash(p + from, count: count, m0: ~0, m1: ~0, seed: seed &+ 0x4E, key: key)
    }

    /// The hash itself: the first 16 bytes are ANDed with `m0`/`m1` (little-endian words);
    /// then 64 bytes per step in four independent lanes (the multiplies overlap), then 16
    /// per step, then the last 16 (overlapping) or a zero-padded rest.
    @inlinable @inline(__always)
    static func hash(_ q: UnsafeRawPointer, count n: Int, m0: UInt64, m1: UInt64, seed: UInt64, key: PacketDigestKey) -> UInt64 {
        var acc = mix(seed ^ key.k0, UInt64(truncatingIfNeeded: n) ^ key.k1)
        var a: UInt64, b: UInt64
        if n >= 16 {
            a = q.loadUnaligned(as: UInt64.self) & m0
            b = q.loadUnaligned(fromByteOffset: 8, as: UInt64.self) & m1
            acc = mix(a ^ key.k1, b ^ acc)
            var i = 16
            if n &- i > 64 {
                var l0 = acc, l1 = acc ^ key.k1, l2 = acc ^ key.k2, l3 = acc ^ key.k3
                repeat {
                    l0 = mix(q.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ key.k0,
                             q.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self) ^ l0)
                    l1 = mix(q.loadUnaligned(fromByteOffset: i &+ 16, as: UInt64.self) ^ key.k1,
                             q.loadUnaligned(fromByteOffset: i &+ 24, as: UInt64.self) ^ l1)
                    l2 = mix(q.loadUnaligned(fromByteOffset: i &+ 32, as: UInt64.self) ^ key.k2,
                             q.loadUnaligned(fromByteOffset: i &+ 40, as: UInt64.self) ^ l2)
                    l3 = mix(q.loadUnaligned(fromByteOffset: i &+ 48, as: UInt64.self) ^ key.k3,
                             q.loadUnaligned(fromByteOffset: i &+ 56, as: UInt64.self) ^ l3)
                    i &+= 64
                } while n &- i > 64
                acc = mix(l0 ^ key.k2, l1 ^ acc) ^ mix(l2 ^ key.k3, l3 ^ key.k0)
            }
            while n &- i > 16 {
                a = q.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                b = q.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self)
                acc = mix(a ^ key.k2, b ^ acc)
                i &+= 16
            }
            if n >= 32 {
                // the last 16 bytes, overlapping what was mixed (never the masked first 16)
                a = q.loadUnaligned(fromByteOffset: n &- 16, as: UInt64.self)
                b = q.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
                acc = mix(a ^ key.k3, b ^ acc)
            } else if n > 16 {
                (a, b) = padded(q + 16, count: n &- 16)
                acc = mix(a ^ key.k3, b ^ acc)
            }
        } else {
            (a, b) = padded(q, count: n)
            acc = mix((a & m0) ^ key.k1, (b & m1) ^ acc)
        }
        return mix(acc ^ key.k0, UInt64(truncatingIfNeeded: n) ^ key.k3 ^ seed)
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
