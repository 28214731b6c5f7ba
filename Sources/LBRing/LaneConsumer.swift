import CLBRing
import LBSys
import Synchronization

/// One packet read from a ring. `bytes` and `tunnel` point into the shared mapping and stay
/// valid until the consumer releases the packet.
public struct RingPacket {
    public let descriptor: lb_desc
    public let bytes: UnsafeRawBufferPointer
    /// the outer flow of the removed tunnel, when LB_F_TUNNEL_INFO is set
    public let tunnel: UnsafePointer<lb_tunnel_info>?

    @usableFromInline
    init(descriptor: lb_desc, bytes: UnsafeRawBufferPointer, tunnel: UnsafePointer<lb_tunnel_info>?) {
        self.descriptor = descriptor
        self.bytes = bytes
        self.tunnel = tunnel
    }
}

/// A consumer's end of one lane (also used read-only by a tap).
public struct LaneConsumer {
    @usableFromInline let head: UnsafePointer<Atomic<UInt64>>
    @usableFromInline let tail: UnsafeMutablePointer<Atomic<UInt64>>?
    @usableFromInline let consumerWaiting: UnsafeMutablePointer<Atomic<UInt32>>?
    @usableFromInline let producerWaiting: UnsafeMutablePointer<Atomic<UInt32>>?
    @usableFromInline let descs: UnsafePointer<lb_desc>
    @usableFromInline let data: UnsafeRawPointer
    @usableFromInline let slots: UInt64
    @usableFromInline let dataBytes: UInt64
    @usableFromInline let maxCaplen: UInt64
    /// next descriptor to read
    @usableFromInline var pos: UInt64
    @usableFromInline var cachedHead: UInt64
    /// descriptors that pointed outside the byte area (only a lapped tap should ever see one)
    @usableFromInline var badDescriptorCount: UInt64 = 0
    public var badDescriptors: UInt64 { badDescriptorCount }
    public var position: UInt64 { pos }

    init(laneBase: UnsafeRawPointer, control: UnsafeMutableRawPointer?, info: lb_ring_info) {
        head = (laneBase + MemoryLayout<lb_lane_header>.offset(of: \.head)!).assumingMemoryBound(to: Atomic<UInt64>.self)
        descs = (laneBase + Int(info.desc_offset)).assumingMemoryBound(to: lb_desc.self)
        data = laneBase + Int(info.data_offset)
        slots = UInt64(info.desc_count)
        dataBytes = info.data_size
        maxCaplen = UInt64(info.max_caplen)
        if let control {
            tail = (control + MemoryLayout<lb_lane_control>.offset(of: \.tail)!).assumingMemoryBound(to: Atomic<UInt64>.self)
            consumerWaiting = (control + MemoryLayout<lb_lane_control>.offset(of: \.consumer_waiting)!)
                .assumingMemoryBound(to: Atomic<UInt32>.self)
            producerWaiting = (control + MemoryLayout<lb_lane_control>.offset(of: \.producer_waiting)!)
                .assumingMemoryBound(to: Atomic<UInt32>.self)
            pos = tail!.pointee.load(ordering: .acquiring)
        } else {
            tail = nil; consumerWaiting = nil; producerWaiting = nil
            pos = head.pointee.load(ordering: .acquiring)   // a tap starts at "now"
        }
        cachedHead = pos
        let h = head.pointee.load(ordering: .acquiring)
        if h &- pos > slots { pos = h; cachedHead = h }  // a tail out of range: start fresh
    }

    /// The producer's published head.
    @inlinable
    public func currentHead() -> UInt64 { head.pointee.load(ordering: .acquiring) }

    /// The next packet, or nil when the lane is empty. Does not release anything.
    @inlinable
    public mutating func next() -> RingPacket? {
        if pos == cachedHead {
            cachedHead = head.pointee.load(ordering: .acquiring)
            if pos == cachedHead { return nil }
        }
        let d = descs[Int(truncatingIfNeeded: pos & (slots &- 1))]
        pos &+= 1
        let off = d.data_off, len = UInt64(d.caplen)
        guard off < dataBytes, len <= maxCaplen, off &+ len <= dataBytes,
              d.tunnel_len == 0 || (d.tunnel_len == 64 && off >= 64) else {
            badDescriptorCount &+= 1
            return RingPacket(descriptor: d, bytes: UnsafeRawBufferPointer(start: data, count: 0), tunnel: nil)
        }
        let tunnel = d.tunnel_len == 64 ? (data + Int(off) - 64).assumingMemoryBound(to: lb_tunnel_info.self) : nil
        return RingPacket(descriptor: d, bytes: UnsafeRawBufferPointer(start: data + Int(off), count: Int(len)), tunnel: tunnel)
    }

    /// lb's reclaim point (lb_lane_header.reclaim), loaded after an acquire fence: a tap's copy
    /// of packet i, made before this call, is intact if the result is still <= i.
    @inlinable
    public func reclaimIndex() -> UInt64 {
        atomicMemoryFence(ordering: .acquiring)
        return (UnsafeRawPointer(head) + MemoryLayout<lb_lane_header>.offset(of: \.reclaim)!)
            .assumingMemoryBound(to: Atomic<UInt64>.self).pointee.load(ordering: .acquiring)
    }

    /// Skips ahead (a tap that fell more than a ring behind). Returns how many were skipped.
    public mutating func skip(to index: UInt64) -> UInt64 {
        let n = index &- pos
        pos = index
        cachedHead = index
        return n
    }

    /// Hands every packet read so far back to lb, and wakes lb if it waits for room.
    @inlinable
    public mutating func release() {
        guard let tail else { return }
        tail.pointee.store(pos, ordering: .sequentiallyConsistent)
        if producerWaiting!.pointee.load(ordering: .sequentiallyConsistent) != 0 {
            Sys.futexWake(UnsafeRawPointer(tail))
        }
    }

    /// Sleeps until lb publishes more or `timeoutNanos` pass.
    public mutating func wait(timeoutNanos: Int64) {
        guard let consumerWaiting else {
            Sys.futexWait(UnsafeRawPointer(head), expected: UInt32(truncatingIfNeeded: cachedHead), timeoutNanos: timeoutNanos)
            return
        }
        consumerWaiting.pointee.store(1, ordering: .sequentiallyConsistent)
        let h = head.pointee.load(ordering: .sequentiallyConsistent)
        if h == pos {
            Sys.futexWait(UnsafeRawPointer(head), expected: UInt32(truncatingIfNeeded: h), timeoutNanos: timeoutNanos)
        }
        consumerWaiting.pointee.store(0, ordering: .relaxed)
    }
}
