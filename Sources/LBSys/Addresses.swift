import Glibc

/// IP addresses as lb's flow keys hold them: 128 bits in two words, IPv4 mapped (::ffff:a.b.c.d).
extension Sys {
    /// Parses "10.0.0.1" or "2001:db8::1"; nil for anything else.
    public static func parseAddress(_ text: String) -> (hi: UInt64, lo: UInt64)? {
        if !text.contains(":") {
            var a = in_addr()
            guard inet_pton(AF_INET, text, &a) == 1 else { return nil }
            return (0, 0x0000_FFFF_0000_0000 | UInt64(UInt32(bigEndian: a.s_addr)))
        }
        var a = in6_addr()
        guard inet_pton(AF_INET6, text, &a) == 1 else { return nil }
        return withUnsafeBytes(of: &a) { b in
            var hi: UInt64 = 0, lo: UInt64 = 0
            for i in 0..<8 { hi = hi << 8 | UInt64(b[i]) }
            for i in 8..<16 { lo = lo << 8 | UInt64(b[i]) }
            return (hi, lo)
        }
    }

    /// The text form (IPv4 for a mapped address), as inet_ntop writes it.
    public static func formatAddress(hi: UInt64, lo: UInt64) -> String {
        var out = [CChar](repeating: 0, count: 64)
        if hi == 0 && lo >> 32 == 0xFFFF {
            var a = in_addr(s_addr: UInt32(truncatingIfNeeded: lo).bigEndian)
            _ = inet_ntop(AF_INET, &a, &out, 64)
        } else {
            var bytes = [UInt8](repeating: 0, count: 16)
            for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: hi >> UInt64(56 - 8 * i)) }
            for i in 0..<8 { bytes[8 + i] = UInt8(truncatingIfNeeded: lo >> UInt64(56 - 8 * i)) }
            bytes.withUnsafeBytes { b in _ = inet_ntop(AF_INET6, b.baseAddress, &out, 64) }
        }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
