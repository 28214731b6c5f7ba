import Glibc
@testable import LBBroker
import LBCore
import LBRing
import LBSys

/// Frames held in memory, handed out once each (a live source: the dispatcher never waits).
struct MemorySource: PacketSource, ~Copyable {
    let buffers: [UnsafeMutableRawBufferPointer]
    var next = 0
    let live: Bool
    /// per frame; Ethernet when empty
    var linkTypes: [UInt32] = []
    var finished: Bool { next >= buffers.count }
    var isLive: Bool { live }
    var name: String { "memory" }

    init(_ frames: [[UInt8]], live: Bool) {
        buffers = frames.map { f in
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: f.count, alignment: 8)
            b.copyBytes(from: f)
            return b
        }
        self.live = live
    }

    deinit { for b in buffers { b.deallocate() } }

    mutating func receive(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        var n = 0
        while n < max && next < buffers.count {
            frames[n] = Frame(bytes: UnsafeRawBufferPointer(buffers[next]), wireLength: buffers[next].count,
                              timestampNanos: UInt64(next) * 1000, linkType: linkTypes.isEmpty ? 1 : linkTypes[next], input: 0)
            n += 1
            next += 1
        }
        return n
    }
}

/// Ethernet / IPv4 / UDP from 10.0.x.y:sport to 10.1.0.1:53.
func udpFrame(client: Int, sport: UInt16, payload: Int = 18) -> [UInt8] {
    var f = [UInt8](repeating: 0, count: 14 + 20 + 8 + payload)
    f[12] = 0x08; f[13] = 0x00
    f[14] = 0x45
    let total = 20 + 8 + payload
    f[16] = UInt8(total >> 8); f[17] = UInt8(total & 0xFF)
    f[22] = 64; f[23] = 17
    f[26] = 10; f[27] = 0; f[28] = UInt8((client >> 8) & 0xFF); f[29] = UInt8(client & 0xFF)
    f[30] = 10; f[31] = 1; f[32] = 0; f[33] = 1
    f[34] = UInt8(sport >> 8); f[35] = UInt8(sport & 0xFF)
    f[36] = 0; f[37] = 53
    f[38] = UInt8((8 + payload) >> 8); f[39] = UInt8((8 + payload) & 0xFF)
    return f
}

/// A consumer-side mapping kept alive by a reference.
final class Mapped {
    let ring: AttachedRing
    init(_ m: RingMemory) throws {
        let g = m.geometry
        ring = try AttachedRing(dataFD: m.dataDescriptor, dataSize: g.dataRegionSize,
                                controlFD: m.controlDescriptor, controlSize: g.controlRegionSize)
    }
    func lane(_ k: Int) -> LaneConsumer { ring.lane(k) }
}

/// Rings for groups of the given sizes, with a consumer-side mapping of each.
final class TestRings {
    let memories: [[RingMemory]]
    let consumers: [Mapped]
    let shared: SharedState
    let geometry: RingGeometry

    /// `big` rings (global indices) get room for 32768 packets; the others for 256.
    init(_ sizes: [Int], big: Set<Int> = [], geometry: RingGeometry = RingGeometry(slots: 256, dataBytes: 1 << 16, maxCaplen: 2048, lanes: 1),
         dedup: DedupTable? = nil) throws {
        self.geometry = geometry
        var all: [[RingMemory]] = []
        var cons: [Mapped] = []
        for (g, n) in sizes.enumerated() {
            var ms: [RingMemory] = []
            for k in 0..<n {
                var geo = geometry
                if big.contains(cons.count) { geo.slots = 32768; geo.dataBytes = 1 << 22 }
                let m = try RingMemory(name: RingName(group: "g\(g)", index: k), ringCount: n, geometry: geo, instanceID: 1)
                ms.append(m)
                cons.append(try Mapped(m))
            }
            all.append(ms)
        }
        memories = all
        consumers = cons
        shared = SharedState(ringCount: cons.count, dedup: dedup)
        for i in 0..<cons.count { shared.setAttached(i, true) }
    }

    /// Reads everything in ring `r` now; returns how many packets.
    func drain(_ r: Int) -> Int {
        var lane = consumers[r].lane(0)
        var n = 0
        while lane.next() != nil { n += 1 }
        lane.release()
        return n
    }

    /// Which global ring of group `g` a frame goes to.
    func ring(group g: Int, for frame: [UInt8], decoder: Decoder) -> Int {
        let first = memories[..<g].reduce(0) { $0 + $1.count }
        let d = frame.withUnsafeBytes { decoder.decode($0, link: .ethernet) }
        return IndirectionTable(firstRing: first, ringCount: memories[g].count).ring(for: decoder.flowHash(d))
    }
}

/// Drains the given rings on a thread until stopped; counts what it read.
final class Drainer: @unchecked Sendable {
    let rings: [Int]
    let all: TestRings
    var counts: [Int: Int] = [:]
    let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    var stop = false
    var thread: pthread_t? = nil

    init(_ all: TestRings, rings: [Int]) {
        self.all = all
        self.rings = rings
        pthread_mutex_init(lock, nil)
    }

    func start() {
        thread = Threads.spawn("drainer") { [self] in
            var lanes = rings.map { all.consumers[$0].lane(0) }
            while true {
                pthread_mutex_lock(lock)
                let done = stop
                pthread_mutex_unlock(lock)
                var got = 0
                for (i, r) in rings.enumerated() {
                    while lanes[i].next() != nil { got += 1; bump(r) }
                    lanes[i].release()
                }
                if done && got == 0 { return }
                if got == 0 { Sys.sleep(nanos: 200_000) }
            }
        }
    }

    func bump(_ r: Int) {
        pthread_mutex_lock(lock)
        counts[r, default: 0] += 1
        pthread_mutex_unlock(lock)
    }

    func finish() -> [Int: Int] {
        pthread_mutex_lock(lock)
        stop = true
        pthread_mutex_unlock(lock)
        if let thread { Threads.join(thread) }
        return counts
    }
}
