/// Frames already in memory, replayed in a cycle for a given number of packets: for
/// benchmarks and load tests. `receive` copies `Frame` values (pointers into the caller's
/// memory, which must outlive the source) and allocates nothing.
public struct ReplaySource: PacketSource {
    let frames: UnsafePointer<Frame>
    let count: Int
    var index: Int
    var left: Int
    public let isLive: Bool
    /// Added to every timestamp at each new cycle over the frames (0: none), so that a cycle's
    /// packets are not copies of the last one's in packet time (a --dedup benchmark); the
    /// offset reached so far is `timeShift`.
    public var cycleShiftNanos: UInt64 = 0
    public var timeShift: UInt64 = 0

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
        if cycleShiftNanos != 0 { return receiveShifted(into: out, n) }
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

    mutating func receiveShifted(into out: UnsafeMutablePointer<Frame>, _ n: Int) -> Int {
        var i = index
        for k in 0..<n {
            out[k] = frames[i]
            out[k].timestampNanos &+= timeShift
            i &+= 1
            if i == count {
                i = 0
                timeShift &+= cycleShiftNanos
            }
        }
        index = i
        left &-= n
        return n
    }
}
