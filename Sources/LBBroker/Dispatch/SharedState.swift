import LBSys
import Synchronization

/// State shared between the control thread (which attaches and detaches consumers) and the
/// data-path thread (which reads it per packet with relaxed loads).
public final class SharedState: @unchecked Sendable {
    public let ringCount: Int
    /// 1 while ring r has a consumer
    let attached: UnsafeMutablePointer<Atomic<UInt32>>
    /// 1 while the data path gave up waiting for ring r's consumer (capture replay only)
    let stalled: UnsafeMutablePointer<Atomic<UInt32>>
    /// 1 while ring r's consumer takes shunt end reports (LB_ATTACH_SHUNT_REPORTS)
    let wantsShuntReports: UnsafeMutablePointer<Atomic<UInt32>>
    /// lane 0's data-path thread writes these (a capture or UDP input has only that one)
    public let counters: Counters
    /// the counters of further data-path threads (a live input: one per RX queue after the
    /// first); set before those threads start
    public var laneCounters: [Counters] = []
    /// set by a signal handler or the control plane: stop reading input
    public let stop = Atomic<UInt32>(0)
    /// counts attaches and detaches; the start-up wait sleeps on it (a futex)
    let attachEvents = Atomic<UInt32>(0)
    /// bucket tables shared by every dispatcher and moved by failover (set before any
    /// dispatcher is made; nil: each dispatcher keeps its own fixed tables)
    public var buckets: BucketTables? = nil
    /// shunt requests to each data-path thread (lane), set before they start (none: no shunting)
    public var shuntChannels: [ShuntChannel] = []
    /// the deduplication window all data-path threads share (nil: off); a constant, so that
    /// the data path's check costs no access bookkeeping
    public let dedup: DedupTable?

    public init(ringCount: Int, dedup: DedupTable? = nil) {
        self.ringCount = ringCount
        self.dedup = dedup
        attached = .allocate(capacity: ringCount)
        stalled = .allocate(capacity: ringCount)
        wantsShuntReports = .allocate(capacity: ringCount)
        for i in 0..<ringCount {
            (attached + i).initialize(to: Atomic(0))
            (stalled + i).initialize(to: Atomic(0))
            (wantsShuntReports + i).initialize(to: Atomic(0))
        }
        counters = Counters(ringCount: ringCount)
    }

    deinit {
        attached.deinitialize(count: ringCount)
        stalled.deinitialize(count: ringCount)
        wantsShuntReports.deinitialize(count: ringCount)
        attached.deallocate()
        stalled.deallocate()
        wantsShuntReports.deallocate()
    }

    /// Every data-path thread's counters added up, for the stats, metrics and checks (the
    /// control thread's; it allocates).
    public func totals() -> Counters {
        laneCounters.isEmpty ? counters : Counters.sum([counters] + laneCounters)
    }

    public func isAttached(_ r: Int) -> Bool { attached[r].load(ordering: .relaxed) != 0 }
    public func setWantsShuntReports(_ r: Int, _ on: Bool) { wantsShuntReports[r].store(on ? 1 : 0, ordering: .releasing) }
    func wantsShuntReports(_ r: Int) -> Bool { wantsShuntReports[r].load(ordering: .acquiring) != 0 }
    public func setAttached(_ r: Int, _ on: Bool) {
        if on { stalled[r].store(0, ordering: .relaxed) }
        attached[r].store(on ? 1 : 0, ordering: .releasing)
        attachEvents.add(1, ordering: .releasing)
        withUnsafePointer(to: attachEvents) { Sys.futexWake(UnsafeRawPointer($0)) }
    }

    /// Sleeps until a consumer attaches or detaches, or `timeoutNanos` pass.
    func waitForAttachEvent(since seen: UInt32, timeoutNanos: Int64) {
        withUnsafePointer(to: attachEvents) { Sys.futexWait(UnsafeRawPointer($0), expected: seen, timeoutNanos: timeoutNanos) }
    }
    public func isStalled(_ r: Int) -> Bool { stalled[r].load(ordering: .relaxed) != 0 }
    public var stopRequested: Bool { stop.load(ordering: .relaxed) != 0 }
    public func requestStop() { stop.store(1, ordering: .relaxed) }
}
