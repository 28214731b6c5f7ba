import CLBRing
import LBSys
import Synchronization

/// lb's end of one lane: writes descriptors and packet bytes, publishes the head.
///
/// A plain value of raw pointers into the ring's mappings; the `RingMemory` that made it owns
/// the memory and must outlive it. Only one thread may use a given lane producer.
///
/// Space is checked against a cached copy of the consumer's tail, reloaded only when the ring
/// looks full (the xsk.h discipline). The tail is written by another process: it is read once,
/// validated (it may only move forward, and never past what was published), and a bad value
/// is ignored and counted, so a consumer writing garbage can only make its own ring look full.
public struct LaneProducer {
    @usableFromInline let head: UnsafeMutablePointer<Atomic<UInt64>>
    /// lane header: the index below which lb may reuse space (what taps check)
    @usableFromInline let reclaim: UnsafeMutablePointer<Atomic<UInt64>>
    @usableFromInline let tail: UnsafeMutablePointer<Atomic<UInt64>>
    @usableFromInline let consumerWaiting: UnsafeMutablePointer<Atomic<UInt32>>
    @usableFromInline let producerWaiting: UnsafeMutablePointer<Atomic<UInt32>>
    /// lane header, second cache line: packets lb dropped for this ring on this lane
    @usableFromInline let dropped: UnsafeMutablePointer<Atomic<UInt64>>
    /// the ring's doorbell eventfd (see RingMemory)
    @usableFromInline let doorbell: Int32
    @usableFromInline let descs: UnsafeMutablePointer<lb_desc>
    @usableFromInline let data: UnsafeMutableRawPointer
    /// lb-private: where each descriptor's record starts in the byte area (monotonic position)
    @usableFromInline let starts: UnsafeMutablePointer<UInt64>
    @usableFromInline let slots: UInt64
    @usableFromInline let dataBytes: UInt64

    /// next descriptor index to write
    @usableFromInline var next: UInt64 = 0
    /// the head value last stored for the consumer
    @usableFromInline var published: UInt64 = 0
    @usableFromInline var cachedTail: UInt64 = 0
    /// monotonic byte position where the next record goes
    @usableFromInline var dataHead: UInt64 = 0
    /// the byte position the next record must not pass (oldest unreleased record + size)
    @usableFromInline var dataLimit: UInt64
    /// times the consumer's tail was out of range
    @usableFromInline var badTailCount: UInt64 = 0
    public var badTails: UInt64 { badTailCount }

    init(head: UnsafeMutableRawPointer, control: UnsafeMutableRawPointer, descs: UnsafeMutableRawPointer,
         data: UnsafeMutableRawPointer, starts: UnsafeMutablePointer<UInt64>, geometry g: RingGeometry, doorbell: Int32) {
        self.head = (head + MemoryLayout<lb_lane_header>.offset(of: \.head)!).assumingMemoryBound(to: Atomic<UInt64>.self)
        dropped = (head + MemoryLayout<lb_lane_header>.offset(of: \.dropped)!).assumingMemoryBound(to: Atomic<UInt64>.self)
        self.doorbell = doorbell
        reclaim = (head + MemoryLayout<lb_lane_header>.offset(of: \.reclaim)!).assumingMemoryBound(to: Atomic<UInt64>.self)
        self.tail = (control + MemoryLayout<lb_lane_control>.offset(of: \.tail)!).assumingMemoryBound(to: Atomic<UInt64>.self)
        consumerWaiting = (control + MemoryLayout<lb_lane_control>.offset(of: \.consumer_waiting)!)
            .assumingMemoryBound(to: Atomic<UInt32>.self)
        producerWaiting = (control + MemoryLayout<lb_lane_control>.offset(of: \.producer_waiting)!)
            .assumingMemoryBound(to: Atomic<UInt32>.self)
        self.descs = descs.assumingMemoryBound(to: lb_desc.self)
        self.data = data
        self.starts = starts
        slots = UInt64(g.slots)
        dataBytes = UInt64(g.dataBytes)
        dataLimit = dataBytes
    }

    /// Descriptors written but not yet consumed (as far as lb knows).
    public var backlog: UInt64 { next &- cachedTail }
    public var nextIndex: UInt64 { next }

    /// Room for a record of `bytes` (tunnel info included), or nil when the ring is full.
    /// On success the caller fills `desc` and the bytes at `data + offset`, then calls `commit`.
    @inlinable @inline(__always)
    public mutating func reserve(bytes: Int) -> (desc: UnsafeMutablePointer<lb_desc>, offset: UInt64)? {
        let need = UInt64(truncatingIfNeeded: bytes &+ 63) & ~63
        var pos = dataHead
        let within = pos & (dataBytes &- 1)
        if within &+ need > dataBytes { pos &+= dataBytes &- within }   // no record wraps
        if next &- cachedTail >= slots || pos &+ need > dataLimit {
            refreshTail()
            if next &- cachedTail >= slots || pos &+ need > dataLimit { return nil }
        }
        starts[Int(truncatingIfNeeded: next & (slots &- 1))] = pos
        dataHead = pos &+ need
        return (descs + Int(truncatingIfNeeded: next & (slots &- 1)), pos & (dataBytes &- 1))
    }

    /// Makes the reserved record part of the lane (not yet visible: see `publish`).
    @inlinable @inline(__always)
    public mutating func commit() { next &+= 1 }

    /// Pointer to the byte area at `offset` (from `reserve`).
    @inlinable @inline(__always)
    public func bytes(at offset: UInt64) -> UnsafeMutableRawPointer { data + Int(truncatingIfNeeded: offset) }

    /// Reloads the consumer's tail; ignores (and counts) a value that cannot be right.
    @inlinable @inline(never)
    public mutating func refreshTail() {
        let t = tail.pointee.load(ordering: .acquiring)
        if t &- cachedTail <= published &- cachedTail {
            if t != cachedTail { reclaim.pointee.store(t, ordering: .releasing) }
            cachedTail = t
        } else {
            badTailCount &+= 1
        }
        dataLimit = (cachedTail == next ? dataHead : starts[Int(truncatingIfNeeded: cachedTail & (slots &- 1))]) &+ dataBytes
    }

    /// Makes every committed record visible to the consumer and wakes it if it sleeps.
    @inlinable @inline(__always)
    public mutating func publish() {
        guard next != published else { return }
        // A sequentially consistent store is a full barrier on x86 (xchg), so the load of the
        // consumer's "waiting" flag below cannot move before it: either the consumer sees the
        // new head before it sleeps, or we see its flag and wake it.
        head.pointee.store(next, ordering: .sequentiallyConsistent)
        published = next
        if consumerWaiting.pointee.load(ordering: .sequentiallyConsistent) != 0 { wakeConsumer() }
    }

    /// Wakes the consumer the way it asked (LB_WAIT_* bits; any other value: the futex, as
    /// consumers before the doorbell expect).
    @usableFromInline @inline(never)
    func wakeConsumer() {
        let how = consumerWaiting.pointee.load(ordering: .relaxed)
        if how & LB_WAIT_DOORBELL != 0 { Sys.ring(eventfd: doorbell) }
        if how & ~LB_WAIT_DOORBELL != 0 { Sys.futexWake(UnsafeRawPointer(head)) }
    }

    /// Counts a packet lb dropped for this ring, where consumers can read it (their own loss
    /// figures: liblbpcap's ps_drop). Only this lane's thread writes it.
    @inlinable @inline(__always)
    public func countDrop() {
        dropped.pointee.store(dropped.pointee.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    /// Sleeps until the consumer releases something or `timeoutNanos` pass (back-pressure for
    /// capture-file replay; a live source never waits).
    public mutating func waitForSpace(timeoutNanos: Int64) {
        producerWaiting.pointee.store(1, ordering: .sequentiallyConsistent)
        let t = tail.pointee.load(ordering: .sequentiallyConsistent)
        if t == cachedTail {
            Sys.futexWait(UnsafeRawPointer(tail), expected: UInt32(truncatingIfNeeded: t), timeoutNanos: timeoutNanos)
        }
        producerWaiting.pointee.store(0, ordering: .relaxed)
        refreshTail()
    }

    /// The consumer's tail as last read (validated).
    public var consumedIndex: UInt64 { cachedTail }
}
