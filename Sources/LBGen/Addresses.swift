// Addresses for building packets: IPv4, IPv6 and MAC, written as literals in tests
// ("10.0.0.1", "2001:db8::1", "02:00:00:00:00:01") or made from integers.

/// An IPv4 address.
public struct IPv4: Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad notation; nil if malformed.
    public init?(parsing s: String) {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, let n = UInt32(p), n <= 255 else { return nil }
            v = v << 8 | n
        }
        value = v
    }

    public init(stringLiteral s: String) {
        guard let a = IPv4(parsing: s) else { preconditionFailure("bad IPv4 literal \(s)") }
        self = a
    }

    public var bytes: [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }

    public static func < (a: IPv4, b: IPv4) -> Bool { a.value < b.value }
}

/// An IPv6 address as two 64-bit halves (hi holds the first 8 bytes).
public struct IPv6: Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var hi: UInt64
    public var lo: UInt64

    public init(hi: UInt64, lo: UInt64) { self.hi = hi; self.lo = lo }

    /// Parses the usual text form, with at most one "::" (no embedded IPv4 part).
    public init?(parsing s: String) {
        let halves = s.components(separatedByDoubleColon: ())
        var groups: [UInt16] = []
        func parse(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            for g in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        switch halves.count {
        case 1:
            guard let g = parse(halves[0]), g.count == 8 else { return nil }
            groups = g
        case 2:
            guard let a = parse(halves[0]), let b = parse(halves[1]), a.count + b.count <= 7 else { return nil }
            groups = a + Array(repeating: 0, count: 8 - a.count - b.count) + b
        default:
            return nil
        }
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<4 { h = h << 16 | UInt64(groups[i]) }
        for i in 4..<8 { l = l << 16 | UInt64(groups[i]) }
        hi = h; lo = l
    }

    public init(stringLiteral s: String) {
        guard let a = IPv6(parsing: s) else { preconditionFailure("bad IPv6 literal \(s)") }
        self = a
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for i in stride(from: 56, through: 0, by: -8) { out.append(UInt8(hi >> UInt64(i) & 0xFF)) }
        for i in stride(from: 56, through: 0, by: -8) { out.append(UInt8(lo >> UInt64(i) & 0xFF)) }
        return out
    }

    public var description: String {
        var g: [String] = []
        for i in stride(from: 48, through: 0, by: -16) { g.append(String(hi >> UInt64(i) & 0xFFFF, radix: 16)) }
        for i in stride(from: 48, through: 0, by: -16) { g.append(String(lo >> UInt64(i) & 0xFFFF, radix: 16)) }
        return g.joined(separator: ":")
    }

    public static func < (a: IPv6, b: IPv6) -> Bool { (a.hi, a.lo) < (b.hi, b.lo) }
}

extension String {
    /// Splits at "::" (the IPv6 zero-run marker).
    fileprivate func components(separatedByDoubleColon: ()) -> [Substring] {
        var out: [Substring] = []
        var start = startIndex
        var i = startIndex
        while i < endIndex {
            let n = index(after: i)
            if self[i] == ":" && n < endIndex && self[n] == ":" {
                out.append(self[start..<i])
                start = index(after: n)
                i = start
                continue
            }
            i = n
        }
        out.append(self[start..<endIndex])
        return out
    }
}

/// Either kind of IP address (for flows that may be IPv4 or IPv6).
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4)
    case v6(IPv6)

    /// The address as the decoder stores it in a FlowKey (IPv4 as ::ffff:a.b.c.d).
    public var keyHalves: (hi: UInt64, lo: UInt64) {
        switch self {
        case .v4(let a): (0, 0x0000_FFFF_0000_0000 | UInt64(a.value))
        case .v6(let a): (a.hi, a.lo)
        }
    }

    public var isIPv6: Bool { if case .v6 = self { true } else { false } }

    public var description: String {
        switch self {
        case .v4(let a): a.description
        case .v6(let a): a.description
        }
    }
}

/// A 48-bit MAC address (first byte most significant).
public struct MAC: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value & 0xFFFF_FFFF_FFFF }

    public init(stringLiteral s: String) {
        let parts = s.split(separator: ":")
        precondition(parts.count == 6, "bad MAC literal \(s)")
        var v: UInt64 = 0
        for p in parts {
            guard let b = UInt8(p, radix: 16) else { preconditionFailure("bad MAC literal \(s)") }
            v = v << 8 | UInt64(b)
        }
        value = v
    }

    public var bytes: [UInt8] { (0..<6).map { UInt8(value >> UInt64(40 - 8 * $0) & 0xFF) } }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }

    public static let a: MAC = "02:00:00:00:00:0a"
    public static let b: MAC = "02:00:00:00:00:0b"
    public static let broadcast: MAC = "ff:ff:ff:ff:ff:ff"
}
