import Glibc
import LBBroker
import LBRing
import LBSys
import Synchronization

/// One group of rings in memfds, all marked attached, and one consumer thread (pinned) that
/// maps every ring as an analyzer would (`AttachedRing`) and drains them round-robin.
public final class BenchRings: @unchecked Sendable {
    public let memories: [RingMemory]
    public let shared: SharedState
    public let geometry: RingGeometry
    let consumer: Consumer
    var thread: pthread_t?

    public init(rings: Int, geometry: RingGeometry, consumerCPU: Int) throws(BenchError) {
        if let problem = geometry.problem { throw BenchError(problem) }
        var ms: [RingMemory] = []
        for k in 0..<rings {
            do {
                ms.append(try RingMemory(name: RingName(group: "bench", index: k), ringCount: rings, geometry: geometry,
                                         instanceID: 0x6265_6E63_6800_0000 | UInt64(k)))
            } catch { throw BenchError("ring \(k): \(error)") }
        }
        memories = ms
        self.geometry = geometry
        let window = DataPathBench.dedupWindowNanos
        shared = SharedState(ringCount: rings, dedup: window > 0 ? DedupTable(windowNanos: window) : nil)
        for k in 0..<rings { shared.setAttached(k, true) }
        consumer = try Consumer(memories: ms, geometry: geometry, cpu: consumerCPU)
        let c = consumer
        thread = Threads.spawn("lb-bench-cons") { c.run() }
        while consumer.ready.load(ordering: .acquiring) == 0 { sched_yield() }
    }

    /// Packets the consumer has read so far (updated after every pass over the rings).
    public var consumed: UInt64 { consumer.packets.load(ordering: .relaxed) }

    /// Stops the consumer once it has drained everything published, and waits for it.
    public func finish() -> (packets: UInt64, hashSum: UInt64, byteSum: UInt64, bad: UInt64) {
        consumer.stop.store(1, ordering: .releasing)
        if let t = thread { Threads.join(t) }
        thread = nil
        return (consumer.packets.load(ordering: .relaxed), consumer.hashSum.load(ordering: .relaxed),
                consumer.byteSum.load(ordering: .relaxed), consumer.bad.load(ordering: .relaxed))
    }

    deinit { if thread != nil { _ = finish() } }

    /// Sum of a per-ring counter over all rings.
    public func total(_ c: Counters.R) -> UInt64 {
        (0..<memories.count).reduce(0) { $0 + shared.counters.get(ring: $1, c) }
    }
}

/// The consumer: for each ring in turn, reads up to `batch` packets (the descriptor, and the
/// first byte of the packet so that its cache line really travels), then releases them.
final class Consumer: @unchecked Sendable {
    static let batch = 256
    let rings: UnsafeMutablePointer<AttachedRing>
    let lanes: UnsafeMutablePointer<LaneConsumer>
    let count: Int
    let cpu: Int
    let ready = Atomic<UInt32>(0)
    let stop = Atomic<UInt32>(0)
    let packets = Atomic<UInt64>(0)
    let hashSum = Atomic<UInt64>(0)
    let byteSum = Atomic<UInt64>(0)
    let bad = Atomic<UInt64>(0)

    init(memories: [RingMemory], geometry g: RingGeometry, cpu: Int) throws(BenchError) {
        count = memories.count
        self.cpu = cpu
        rings = .allocate(capacity: count)
        lanes = .allocate(capacity: count)
        for (k, m) in memories.enumerated() {
            do {
                (rings + k).initialize(to: try AttachedRing(dataFD: m.dataDescriptor, dataSize: g.dataRegionSize,
                                                            controlFD: m.controlDescriptor, controlSize: g.controlRegionSize))
            } catch { throw BenchError("attach ring \(k): \(error)") }
            (lanes + k).initialize(to: rings[k].lane(0))
        }
    }

    deinit {
        lanes.deinitialize(count: count)
        lanes.deallocate()
        rings.deinitialize(count: count)
        rings.deallocate()
    }

    func run() {
        do { try Threads.pin(cpu: cpu) } catch { fatalError("\(error)") }
        ready.store(1, ordering: .releasing)
        var n: UInt64 = 0, hs: UInt64 = 0, bs: UInt64 = 0
        while true {
            var got = 0
            for r in 0..<count {
                var k = 0
                while k < Self.batch, let p = lanes[r].next() {
                    hs &+= p.descriptor.flow_hash
                    if let base = p.bytes.baseAddress, p.bytes.count > 0 { bs &+= UInt64(base.load(as: UInt8.self)) }
                    k &+= 1
                }
                if k > 0 {
                    lanes[r].release()
                    got &+= k
                }
            }
            if got > 0 {
                n &+= UInt64(got)
                packets.store(n, ordering: .relaxed)
            } else if stop.load(ordering: .acquiring) != 0 {
                // Everything published before the stop is visible now: one more empty pass ends it.
                var left = false
                for r in 0..<count where lanes[r].currentHead() != lanes[r].position { left = true }
                if !left { break }
            }
        }
        var b: UInt64 = 0
        for r in 0..<count { b &+= lanes[r].badDescriptors }
        hashSum.store(hs, ordering: .relaxed)
        byteSum.store(bs, ordering: .relaxed)
        bad.store(b, ordering: .relaxed)
    }
}
