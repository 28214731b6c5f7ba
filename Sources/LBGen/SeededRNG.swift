import LBCore

/// A small, fast, seeded generator (xoshiro256**, seeded by splitmix64): the same seed gives
/// the same traffic on every platform and Swift version, unlike the system generator.
public struct SeededRNG: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var m = SplitMix64(seed: seed)
        s0 = m.next(); s1 = m.next(); s2 = m.next(); s3 = m.next()
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// `count` random bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            var v = next()
            for _ in 0..<min(8, count - out.count) { out.append(UInt8(v & 0xFF)); v >>= 8 }
        }
        return out
    }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
}
