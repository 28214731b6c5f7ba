import Glibc
import LBBroker
import LBCore
import LBRing
import LBSys

/// What one measured run of lb's data path gave.
public struct SwiftRun: Sendable {
    public var packets: Int
    public var nanos: UInt64
    /// malloc calls / free calls during the measured loop (nil: not counted)
    public var mallocs: Int?
    public var frees: Int?
    /// packets dropped because a ring was full (live semantics), measured loop only
    public var drops: UInt64
    /// over the whole session (warm-up and measured loop)
    public var dropsTotal: UInt64
    public var forwarded: UInt64
    public var consumed: UInt64
    public var consumerHashSum: UInt64
    public var consumerByteSum: UInt64
    public var badDescriptors: UInt64
    /// CPU time the producer thread got during the measured loop, over the wall time (below
    /// ~0.97: something else ran on its CPU and the figure is not to be trusted)
    public var cpuShare: Double
    /// packets the dispatcher dropped as duplicates over the session (DataPathBench.dedupWindowNanos)
    public var deduplicated: UInt64 = 0
    public var mpps: Double { Double(packets) / Double(nanos) * 1000 }
    public var nsPerPacket: Double { Double(nanos) / Double(packets) }
}

/// Bracket for the measured loop: start counting allocations, stop and return (mallocs, frees).
public struct AllocationProbe {
    public var start: () -> Void
    public var stop: () -> (mallocs: Int, frees: Int)
    public init(start: @escaping () -> Void, stop: @escaping () -> (mallocs: Int, frees: Int)) {
        self.start = start
        self.stop = stop
    }
}

public enum DataPathBench {
    /// --dedup: the window of a deduplicating dispatcher (0: off)
    nonisolated(unsafe) public static var dedupWindowNanos: UInt64 = 0
    /// --new-cycles (implied by --dedup): each cycle over the frames is shifted in packet time
    /// past the last one and the window, so no cycle's packet is a copy of the last one's
    nonisolated(unsafe) public static var newCycles = false
    /// --tenant-tag vni|vlan: every session's dispatcher tags decapsulated packets
    nonisolated(unsafe) public static var tenantTag: String? = nil
    /// The group size the issue asks for: one group of 8 rings.
    public static let rings = 8

    /// A smaller ring: 2 MiB of packet bytes and 4096 descriptors per ring.
    public static let smallGeometry = RingGeometry(slots: 4096, dataBytes: 2 << 20, maxCaplen: 9216, lanes: 1)

    /// Packets to run before measuring: at least `minimum`, and enough to write every ring's
    /// byte area twice over (first-touch page faults and cold caches stay out of the figure).
    public static func warmupPackets(_ set: FrameSet, geometry g: RingGeometry, minimum: Int) -> Int {
        let record = (Double(set.bytes) / Double(set.count) + 64 + 63)   // worst case: tunnel info, rounding
        let fill = Int(2 * Double(rings) * Double(g.dataBytes) / record)
        let slotsFill = 2 * rings * g.slots
        return max(minimum, fill, slotsFill)
    }

    /// One session: rings, consumer thread on `consumerCPU`, the dispatcher on the calling
    /// thread pinned to `producerCPU`; `warmup` packets, then `packets` measured.
    public static func run(_ set: FrameSet, geometry: RingGeometry, packets: Int, warmup: Int,
                           producerCPU: Int = 0, consumerCPU: Int = 1, probe: AllocationProbe? = nil,
                           config: DispatchConfig = DispatchConfig()) throws(BenchError) -> SwiftRun {
        let session = try Session(set, geometry: geometry, producerCPU: producerCPU, consumerCPU: consumerCPU, config: config)
        session.run(packets: warmup)
        let dropsBefore = session.rings.total(.droppedFull)

        probe?.start()
        let cpu0 = Machine.threadCPUNanos()
        let nanos = session.run(packets: packets)
        let cpu1 = Machine.threadCPUNanos()
        let allocs = probe?.stop()

        let drops = session.rings.total(.droppedFull) - dropsBefore
        let forwarded = session.rings.total(.forwarded)
        let c = session.finish()
        var run = SwiftRun(packets: packets, nanos: nanos, mallocs: allocs?.mallocs, frees: allocs?.frees, drops: drops,
                        dropsTotal: session.rings.total(.droppedFull), forwarded: forwarded, consumed: c.packets, consumerHashSum: c.hashSum, consumerByteSum: c.byteSum,
                        badDescriptors: c.bad, cpuShare: Double(cpu1 - cpu0) / Double(nanos))
        run.deduplicated = session.rings.shared.counters.get(.deduplicated)
        return run
    }
}

/// lb's data path set up once and run as often as wanted: 8 rings, their consumer thread, and
/// a dispatcher (backpressure off: a full ring drops and counts, as with a live source).
public final class Session: @unchecked Sendable {
    public let set: FrameSet
    public let rings: BenchRings
    var dispatcher: Dispatcher
    var position = 0
    let producerCPU: Int
    /// per cycle over the frames, added to their timestamps (DataPathBench.newCycles)
    var cycleShift: UInt64 = 0
    var timeShift: UInt64 = 0

    /// `config`: the data path's options (per-group policy, ...); backpressure is always off.
    public init(_ set: FrameSet, geometry: RingGeometry, producerCPU: Int = 0, consumerCPU: Int = 1,
                config base: DispatchConfig = DispatchConfig()) throws(BenchError) {
        self.set = set
        self.producerCPU = producerCPU
        do { try Threads.pin(cpu: producerCPU) } catch { throw BenchError("\(error)") }
        rings = try BenchRings(rings: DataPathBench.rings, geometry: geometry, consumerCPU: consumerCPU)
        var config = base
        config.backpressure = false
        if let t = DataPathBench.tenantTag { config.tenantTag = TenantTag(source: t == "vlan" ? .vlan : .vni) }
        if DataPathBench.newCycles || DataPathBench.dedupWindowNanos > 0 {
            let first = set.frames[0].timestampNanos, last = set.frames[set.count - 1].timestampNanos
            cycleShift = last &- first &+ 10_000_000
        }
        dispatcher = Dispatcher(config: config, groups: [rings.memories], shared: rings.shared)
    }

    /// Pins the calling thread to the producer CPU (for harnesses that run us on their thread).
    public func pin() { try? Threads.pin(cpu: producerCPU) }

    /// Runs `packets` packets through the data path, continuing the cycle over the frames;
    /// returns the nanoseconds it took.
    @discardableResult
    public func run(packets: Int) -> UInt64 {
        var source = ReplaySource(set, packets: packets, start: position)
        source.cycleShiftNanos = cycleShift
        source.timeShift = timeShift
        let t0 = Sys.monoNanos()
        dispatcher.run(&source)
        let t1 = Sys.monoNanos()
        position = source.position
        timeShift = source.timeShift
        return t1 - t0
    }

    /// Stops the consumer once it has drained everything.
    public func finish() -> (packets: UInt64, hashSum: UInt64, byteSum: UInt64, bad: UInt64) { rings.finish() }
}
