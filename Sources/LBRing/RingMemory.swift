import CLBRing
import Glibc
import LBSys
import Synchronization

/// lb's side of one ring: the two sealed memfds, lb's mappings of them, and lb-private state.
///
/// The DATA region is sealed with F_SEAL_FUTURE_WRITE after lb maps it, so a consumer can map
/// it only read-only and cannot write(2) or resize it. The CONTROL region (the consumer's tail
/// and reports) is writable by the consumer but sealed against resizing, so no consumer can
/// make lb fault on a truncated mapping.
public final class RingMemory: @unchecked Sendable {
    public let name: RingName
    public let geometry: RingGeometry
    public let instanceID: UInt64
    let dataFD: OwnedFD
    let controlFD: OwnedFD
    /// the ring's doorbell: an eventfd lb writes to when a consumer that asked for it sleeps
    /// (LB_WAIT_DOORBELL) and lb publishes, and at end of stream. It lives as long as the ring,
    /// so a producer thread never writes to a descriptor the control thread has closed.
    let doorbellFD: OwnedFD
    let dataMap: Mapping
    let controlMap: Mapping
    let starts: UnsafeMutablePointer<UInt64>

    public init(name: RingName, ringCount: Int, geometry g: RingGeometry, instanceID: UInt64) throws(SysError) {
        self.name = name
        self.geometry = g
        self.instanceID = instanceID
        // memfds start at mode 0777; only lb's user until the control server applies --ring-group
        dataFD = OwnedFD(try Sys.memfd("lb:\(name):data"))
        guard fchmod(dataFD.raw, 0o600) == 0 else { throw SysError("fchmod") }
        try Sys.truncate(dataFD.raw, g.dataRegionSize)
        dataMap = try Mapping(fd: dataFD.raw, size: g.dataRegionSize, writable: true)
        controlFD = OwnedFD(try Sys.memfd("lb:\(name):control"))
        guard fchmod(controlFD.raw, 0o600) == 0 else { throw SysError("fchmod") }
        try Sys.truncate(controlFD.raw, g.controlRegionSize)
        controlMap = try Mapping(fd: controlFD.raw, size: g.controlRegionSize, writable: true)
        doorbellFD = OwnedFD(try Sys.eventfd())
        starts = .allocate(capacity: g.lanes * g.slots)
        starts.initialize(repeating: 0, count: g.lanes * g.slots)

        let info = dataMap.base.assumingMemoryBound(to: lb_ring_info.self)
        info.pointee.magic = LB_RING_MAGIC
        info.pointee.version = LB_RING_VERSION
        info.pointee.info_size = UInt32(MemoryLayout<lb_ring_info>.size)
        info.pointee.region_size = UInt64(g.dataRegionSize)
        info.pointee.instance_id = instanceID
        info.pointee.lane_count = UInt32(g.lanes)
        info.pointee.link_type = LB_LINKTYPE_ETHERNET
        info.pointee.desc_count = UInt32(g.slots)
        info.pointee.desc_size = UInt32(MemoryLayout<lb_desc>.size)
        info.pointee.max_caplen = UInt32(g.maxCaplen)
        info.pointee.ring_index = UInt32(name.index)
        info.pointee.ring_count = UInt32(ringCount)
        info.pointee.producer_pid = getpid()
        info.pointee.lane_offset = UInt64(g.laneOffset)
        info.pointee.lane_stride = UInt64(g.laneStride)
        info.pointee.desc_offset = UInt64(g.descOffset)
        info.pointee.data_offset = UInt64(g.dataOffset)
        info.pointee.data_size = UInt64(g.dataBytes)
        withUnsafeMutableBytes(of: &info.pointee.group) { dst in
            for (i, b) in name.group.utf8.prefix(Int(LB_GROUP_NAME_MAX) - 1).enumerated() { dst[i] = b }
        }
        stateWord.pointee.store(LB_STATE_RUNNING, ordering: .releasing)
        try Sys.seal(dataFD.raw, futureWrite: true)
        try Sys.seal(controlFD.raw, futureWrite: false)
    }

    deinit { starts.deallocate() }

    public var dataDescriptor: Int32 { dataFD.raw }
    public var controlDescriptor: Int32 { controlFD.raw }
    public var doorbellDescriptor: Int32 { doorbellFD.raw }

    var stateWord: UnsafeMutablePointer<Atomic<UInt32>> {
        (dataMap.base + MemoryLayout<lb_ring_info>.offset(of: \.state)!).assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    func laneBase(_ lane: Int) -> UnsafeMutableRawPointer { dataMap.base + geometry.laneOffset + lane * geometry.laneStride }

    func laneControl(_ lane: Int) -> UnsafeMutableRawPointer {
        controlMap.base + Int(LB_CONTROL_LANES) + lane * MemoryLayout<lb_lane_control>.size
    }

    /// The producer end of `lane`. Valid while this object lives; one thread per lane.
    public func producer(lane: Int) -> LaneProducer {
        precondition(lane >= 0 && lane < geometry.lanes)
        let base = laneBase(lane)
        return LaneProducer(head: base, control: laneControl(lane), descs: base + geometry.descOffset,
                            data: base + geometry.dataOffset, starts: starts + lane * geometry.slots, geometry: geometry,
                            doorbell: doorbellFD.raw)
    }

    /// Marks end of stream (or closed) and wakes every sleeping consumer.
    public func setState(_ state: UInt32) {
        stateWord.pointee.store(state, ordering: .releasing)
        for lane in 0..<geometry.lanes { Sys.futexWake(UnsafeRawPointer(laneBase(lane))) }
        Sys.ring(eventfd: doorbellFD.raw)
    }

    /// Publishes lb's losses before the rings (lb_ring_info.ingress_drops).
    public func setIngressDrops(_ n: UInt64) {
        let p = (dataMap.base + MemoryLayout<lb_ring_info>.offset(of: \.ingress_drops)!).assumingMemoryBound(to: Atomic<UInt64>.self)
        p.pointee.store(n, ordering: .relaxed)
    }

    /// Packets lb dropped for this ring, summed over lanes, as published in the lane headers.
    public var publishedDrops: UInt64 {
        var sum: UInt64 = 0
        for lane in 0..<geometry.lanes {
            let p = (laneBase(lane) + MemoryLayout<lb_lane_header>.offset(of: \.dropped)!).assumingMemoryBound(to: Atomic<UInt64>.self)
            sum &+= p.pointee.load(ordering: .relaxed)
        }
        return sum
    }

    public func heartbeat(_ nanos: UInt64) {
        let p = (dataMap.base + MemoryLayout<lb_ring_info>.offset(of: \.heartbeat_ns)!).assumingMemoryBound(to: Atomic<UInt64>.self)
        p.pointee.store(nanos, ordering: .relaxed)
    }

    /// Published head of a lane (what the consumer can see).
    public func head(lane: Int) -> UInt64 {
        (laneBase(lane) + MemoryLayout<lb_lane_header>.offset(of: \.head)!).assumingMemoryBound(to: Atomic<UInt64>.self)
            .pointee.load(ordering: .acquiring)
    }

    /// The consumer's tail of a lane, as written by the consumer (not validated).
    public func tail(lane: Int) -> UInt64 {
        (laneControl(lane) + MemoryLayout<lb_lane_control>.offset(of: \.tail)!).assumingMemoryBound(to: Atomic<UInt64>.self)
            .pointee.load(ordering: .acquiring)
    }

    /// Packets published but not yet released, over every lane. The tails come from the
    /// consumer: a lane whose tail is out of range counts as full (as lb treats it).
    public var backlog: UInt64 {
        var sum: UInt64 = 0
        for lane in 0..<geometry.lanes {
            let b = head(lane: lane) &- tail(lane: lane)
            sum &+= b <= UInt64(geometry.slots) ? b : UInt64(geometry.slots)
        }
        return sum
    }

    /// The consumer has released everything published, in every lane.
    public var drained: Bool {
        for lane in 0..<geometry.lanes where tail(lane: lane) != head(lane: lane) { return false }
        return true
    }

    /// Clears the "consumer sleeps" flags a departed consumer may have left set, so lb does not
    /// keep waking nobody.
    public func clearConsumerFlags() {
        for lane in 0..<geometry.lanes {
            let p = (laneControl(lane) + MemoryLayout<lb_lane_control>.offset(of: \.consumer_waiting)!)
                .assumingMemoryBound(to: Atomic<UInt32>.self)
            p.pointee.store(0, ordering: .relaxed)
        }
    }

    /// What the consumer last reported about itself. Written by another process: the values
    /// are shown, never trusted.
    public func consumerReport() -> ConsumerReport {
        // struct lb_consumer_report at the start of CONTROL, read field by field
        func word(_ field: KeyPath<lb_consumer_report, UInt64>) -> UInt64 {
            (controlMap.base + MemoryLayout<lb_consumer_report>.offset(of: field)!).assumingMemoryBound(to: Atomic<UInt64>.self)
                .pointee.load(ordering: .relaxed)
        }
        let pid = (controlMap.base + MemoryLayout<lb_consumer_report>.offset(of: \.pid)!).assumingMemoryBound(to: Atomic<Int32>.self)
            .pointee.load(ordering: .relaxed)
        return ConsumerReport(pid: pid, heartbeatNanos: word(\.heartbeat_ns), packetsProcessed: word(\.packets_processed),
                              lossGaps: word(\.loss_gaps), lossAcks: word(\.loss_acks))
    }
}

/// A consumer's own report (struct lb_consumer_report).
public struct ConsumerReport: Equatable, Sendable {
    public var pid: Int32
    public var heartbeatNanos: UInt64
    public var packetsProcessed: UInt64
    public var lossGaps: UInt64
    public var lossAcks: UInt64

    public init(pid: Int32 = 0, heartbeatNanos: UInt64 = 0, packetsProcessed: UInt64 = 0, lossGaps: UInt64 = 0, lossAcks: UInt64 = 0) {
        self.pid = pid; self.heartbeatNanos = heartbeatNanos; self.packetsProcessed = packetsProcessed
        self.lossGaps = lossGaps; self.lossAcks = lossAcks
    }
}
