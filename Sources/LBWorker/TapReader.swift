import CLBRing
import LBRing

extension RingConsumer {
    /// A tap's read: copies up to `max` packets out of the ring into `scratch` (at least the
    /// ring's max caplen bytes) and calls `body` with each intact copy. lb never waits for a tap,
    /// so a tap that falls behind loses packets: a packet whose space lb may have reused before
    /// or while it was copied (lb_lane_header.reclaim passed it) is not shown but counted in
    /// `missed` (the seqlock pattern of docs/ring-protocol.md). Returns packets shown.
    public mutating func tapPoll(max: Int, scratch: UnsafeMutableRawBufferPointer, missed: inout UInt64,
                                 _ body: (lb_desc, UnsafeRawBufferPointer) -> Void) -> Int {
        precondition(isTap)
        var n = 0
        var emptyLanes = 0
        while n < max && emptyLanes < lanes.count {
            let k = nextLane
            // Everything below reclaim may already be overwritten: skip it.
            let r = lanes[k].reclaimIndex()
            if r &- lanes[k].position < (1 << 63) && r != lanes[k].position { missed &+= lanes[k].skip(to: r) }
            let i = lanes[k].position
            guard let p = lanes[k].next() else {
                emptyLanes += 1
                nextLane = (nextLane + 1) % lanes.count
                continue
            }
            emptyLanes = 0
            let d = p.descriptor
            let len = min(p.bytes.count, scratch.count)
            if len > 0 { scratch.baseAddress!.copyMemory(from: p.bytes.baseAddress!, byteCount: len) }
            let after = lanes[k].reclaimIndex()
            if after &- i < (1 << 63) && after > i {    // lb reused the space while we copied
                missed &+= 1
                continue
            }
            guard d.caplen == UInt32(len) else {        // a descriptor out of range (only a lapped tap sees one)
                missed &+= 1
                continue
            }
            body(d, UnsafeRawBufferPointer(start: scratch.baseAddress, count: len))
            n += 1
        }
        return n
    }
}
