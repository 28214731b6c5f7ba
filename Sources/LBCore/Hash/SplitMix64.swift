/// splitmix64: a 64-bit seed stretched into a stream of well-mixed words. Seeds lb's other
/// generators and keys (the dedup digest's key, `lb gen`'s xoshiro256**).
public struct SplitMix64: Sendable {
    var x: UInt64

    public init(seed: UInt64) { x = seed }

    public mutating func next() -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
