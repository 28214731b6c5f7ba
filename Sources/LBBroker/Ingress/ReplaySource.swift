/// Frames already in memory, replayed in a cycle for a given number of packets: for
/// benchmarks and load tests. `receive` copies `Frame` values (pointers into the caller's
/// memory, which must outlive the source) and allocates nothing.
public struct ReplaySource: PacketSource {
    let frames: UnsafePointer<Frame>
    let count: Int
    var index: Int
    var left: Int
    public let isLive: Bool

    /// Replays `count` frames from `frames`, starting at `start`, until `packets` were given.
    public init(frames: UnsafePointer<Frame>, count: Int, packets: Int, start: Int = 0, live: Bool = true) {
        precondition(count > 0)
        self.frames = frames
        self.count = count
        index = start % count
        left = packets
        isLive = live
    }

    public var finished: Bool { left == 0 }
    public var name: String { "memory" }
    /// where the next packet comes from (to continue the cycle in another run)
    public var position: Int { index }

    public mutating func receive(into out: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        let n = left < max ? left : max
        var i = index
        for k in 0..<n {
            out[k] = frames[i]
            i &+= 1
            if i == count { i = 0 }
        }
        index = i
        left &-= n
        return n
    }
}
