// Checksums the builder fills in: the Internet checksum (IPv4 header, TCP, UDP, ICMP), the
// CRC-32C of SCTP, and the CRC-32 of an 802.11 FCS.

public enum Checksum {
    /// The ones'-complement sum of 16-bit big-endian words, folded to 16 bits (not inverted).
    public static func sum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt32 {
        var s = initial
        var i = 0
        while i + 1 < bytes.count {
            s &+= UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { s &+= UInt32(bytes[i]) << 8 }
        while s >> 16 != 0 { s = (s & 0xFFFF) &+ (s >> 16) }
        return s
    }

    /// The Internet checksum of `bytes` (RFC 1071), with an optional pseudo-header sum.
    public static func internet(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
        ~UInt16(truncatingIfNeeded: sum(bytes, initial: initial))
    }

    /// The sum of an IPv4 or IPv6 pseudo-header.
    public static func pseudoHeader(src: [UInt8], dst: [UInt8], proto: UInt8, length: Int) -> UInt32 {
        var p = src + dst
        if src.count == 4 {
            p += [0, proto, UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        } else {
            p += [UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF),
                  0, 0, 0, proto]
        }
        return sum(p)
    }

    /// Whether `bytes` (with its checksum field in place) sums to 0xFFFF.
    public static func verifies(_ bytes: [UInt8], initial: UInt32 = 0) -> Bool {
        sum(bytes, initial: initial) == 0xFFFF
    }

    private static func crcTable(_ poly: UInt32) -> [UInt32] {
        (0..<256).map { i -> UInt32 in
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? poly ^ (c >> 1) : c >> 1 }
            return c
        }
    }

    private static let crc32Table = crcTable(0xEDB8_8320)
    private static let crc32cTable = crcTable(0x82F6_3B78)

    private static func crc(_ bytes: [UInt8], _ table: [UInt32]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return ~c
    }

    /// CRC-32 (IEEE 802.3), as in an Ethernet or 802.11 FCS (stored little-endian).
    public static func crc32(_ bytes: [UInt8]) -> UInt32 { crc(bytes, crc32Table) }

    /// CRC-32C (Castagnoli), as in SCTP (stored little-endian).
    public static func crc32c(_ bytes: [UInt8]) -> UInt32 { crc(bytes, crc32cTable) }
}

/// Big-endian appends.
extension Array where Element == UInt8 {
    @inlinable mutating func be16(_ v: UInt16) { append(UInt8(v >> 8)); append(UInt8(v & 0xFF)) }
    @inlinable mutating func be32(_ v: UInt32) { be16(UInt16(v >> 16)); be16(UInt16(v & 0xFFFF)) }
    @inlinable mutating func le16(_ v: UInt16) { append(UInt8(v & 0xFF)); append(UInt8(v >> 8)) }
    @inlinable mutating func le32(_ v: UInt32) { le16(UInt16(v & 0xFFFF)); le16(UInt16(v >> 16)) }
    @inlinable mutating func le64(_ v: UInt64) { le32(UInt32(v & 0xFFFF_FFFF)); le32(UInt32(v >> 32)) }

    @inlinable mutating func setBE16(_ v: UInt16, at i: Int) { self[i] = UInt8(v >> 8); self[i + 1] = UInt8(v & 0xFF) }

    @inlinable func readBE16(_ i: Int) -> UInt16 { UInt16(self[i]) << 8 | UInt16(self[i + 1]) }
}
