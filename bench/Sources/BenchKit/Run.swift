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
    public var forwarded: UInt64
    public var consumed: UInt64
    public var consumerHashSum: UInt64
    public var consumerByteSum: UInt64
    public var badDescriptors: UInt64
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
                           producerCPU: Int = 0, consumerCPU: Int = 1, probe: AllocationProbe? = nil) throws(BenchError) -> SwiftRun {
        do { try Threads.pin(cpu: producerCPU) } catch { throw BenchError("\(error)") }
        let rings = try BenchRings(rings: rings, geometry: geometry, consumerCPU: consumerCPU)
        var config = DispatchConfig()
        config.backpressure = false                     // live: a full ring drops (and counts)
        var dispatcher = Dispatcher(config: config, groups: [rings.memories], shared: rings.shared)

        var warm = MemorySource(set, packets: warmup)
        dispatcher.run(&warm)
        let dropsBefore = rings.total(.droppedFull)
        var source = MemorySource(set, packets: packets, start: warm.position)

        probe?.start()
        let t0 = Sys.monoNanos()
        dispatcher.run(&source)
        let t1 = Sys.monoNanos()
        let allocs = probe?.stop()

        let drops = rings.total(.droppedFull) - dropsBefore
        let forwarded = rings.total(.forwarded)
        let c = rings.finish()
        _ = consume dispatcher
        return SwiftRun(packets: packets, nanos: t1 - t0, mallocs: allocs?.mallocs, frees: allocs?.frees, drops: drops,
                        forwarded: forwarded, consumed: c.packets, consumerHashSum: c.hashSum, consumerByteSum: c.byteSum,
                        badDescriptors: c.bad)
    }
}
