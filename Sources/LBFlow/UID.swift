/// A connection uid like Zeek's: "C" then two base62 numbers (a 96-bit value).
public struct UID: Hashable, Sendable {
    public var a: UInt64
    public var b: UInt32

    public init(a: UInt64, b: UInt32) { self.a = a; self.b = b }

    static let digits: [UInt8] = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    /// Appends "C" and the base62 digits to `out`.
    public func append(to out: inout [UInt8]) {
        out.append(UInt8(ascii: "C"))
        Self.base62(a, &out)
        Self.base62(UInt64(b), &out)
    }

    public var string: String {
        var o: [UInt8] = []
        append(to: &o)
        return String(decoding: o, as: UTF8.self)
    }

    static func base62(_ v: UInt64, _ out: inout [UInt8]) {
        var tmp: (UInt64, UInt64) = (0, 0)   // up to 11 digits, reversed
        var n = v
        var count = 0
        repeat {
            let d = UInt64(n % 62)
            n /= 62
            switch count / 8 {
            case 0: tmp.0 |= d << UInt64((count % 8) * 8)
            default: tmp.1 |= d << UInt64((count % 8) * 8)
            }
            count += 1
        } while n > 0
        var i = count - 1
        while i >= 0 {
            let w = i < 8 ? tmp.0 : tmp.1
            out.append(digits[Int(w >> UInt64((i % 8) * 8) & 0xFF)])
            i -= 1
        }
    }
}

/// Makes uids: a keyed mix of a counter, unique per generator seed.
public struct UIDGenerator: Sendable {
    var state: UInt64
    let key: UInt64

    public init(seed: UInt64) {
        key = Self.mix(seed ^ 0x5DEE_CE66_D1CE_4E5B)
        state = Self.mix(seed &+ 0x9E37_79B9_7F4A_7C15)
    }

    public mutating func next() -> UID {
        state &+= 0x9E37_79B9_7F4A_7C15
        let a = Self.mix(state ^ key)
        let b = Self.mix(a ^ state)
        return UID(a: a, b: UInt32(truncatingIfNeeded: b))
    }

    /// The uid Zeek-style logs give an outer tunnel flow: the same for every worker (derived
    /// from the canonical outer 5-tuple), so the parents of one tunnel agree across workers.
    public static func tunnelUID(_ x: IPAddr, _ xp: UInt16, _ y: IPAddr, _ yp: UInt16, proto: UInt8) -> UID {
        let (p, pp, q, qp) = endpointLess(x, xp, y, yp) ? (x, xp, y, yp) : (y, yp, x, xp)
        var h = mix(p.hi ^ 0x1234_5678) ^ p.lo
        h = mix(h) ^ q.hi
        h = mix(h) ^ q.lo
        h = mix(h) ^ (UInt64(pp) << 24 | UInt64(qp) << 8 | UInt64(proto))
        let a = mix(h)
        return UID(a: a, b: UInt32(truncatingIfNeeded: mix(a ^ 0xABCD)))
    }

    @inline(__always) static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
