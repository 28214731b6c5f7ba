import CLBXdp
import Glibc
import LBCore
import LBRing
import LBSys

/// How lb's XDP program is attached.
public enum XDPMode: String, Sendable, CaseIterable {
    /// native (driver) mode, else generic (SKB) mode with a message that says so
    case auto
    case native
    case generic
}

/// Options of the live sources (`af_xdp:IFACE`, `af_packet:IFACE`).
public struct LiveOptions: Sendable {
    /// `--divert FILTER`: only matching traffic goes to lb (AF_XDP); nil: all of it
    public var divert: DivertFilter? = nil
    public var xdpMode: XDPMode = .auto
    /// `--xdp-object PATH`, else $LB_XDP_OBJECT, else beside the executable (see `findObject`)
    public var xdpObject: String? = nil
    /// `--cpus`: dispatch thread k runs on cpus[k % count]
    public var cpus: [Int] = []
    /// UMEM frames per queue and their size (a frame holds one buffer of a frame; larger frames
    /// arrive as several buffers, see multi-buffer). The RX ring holds half the frames: 8,192
    /// packets of buffering by default, what lets lb ride out the milliseconds a busy CPU keeps
    /// it off. More is not better: with 32,768 frames lb lost more, not less (bench/README.md;
    /// likely the caches: the kernel takes fill-ring frames in order, so each lap touches every
    /// frame). 2 KiB frames hold an MTU-sized frame and its VXLAN or
    /// GENEVE wrapping after the kernel's 256 bytes of headroom, at half the memory of 4 KiB.
    public var frames: UInt32 = 16384
    public var frameSize: UInt32 = 2048
    /// AF_XDP: the interface's NAPI runs from a timer of this many µs while traffic flows
    /// (`NAPIDefer`; 0: leave the interface's settings alone)
    public var napiDeferMicros: UInt32 = 200
    /// AF_XDP: the longest nap while traffic flows (see `Nap`; 0: poll() for every wake-up)
    public var napMaxNanos: UInt64 = 5_000_000
    /// AF_PACKET ring: blocks and their size
    public var blockSize: UInt32 = 1 << 21
    public var blockCount: UInt32 = 32
    public init() {}
}

/// How a live ingress reads: AF_XDP with lb's XDP program attached natively or generically, or
/// an AF_PACKET TPACKET_V3 ring. (The status shows the raw value.)
public enum LiveMode: String, Sendable {
    case native, generic
    case tpacketV3 = "tpacket_v3"
}

/// What the live ingresses share: one dispatch thread per lane (RX queue), each with its own
/// Dispatcher writing into its own lane of every ring and its own Counters, until a stop; the
/// loss-by-stage status. The kernel resources belong to the subclasses' owners
/// (`AFXDPIngress`, `AFPacketIngress`; see Owners.swift).
class LiveIngress: Ingress, @unchecked Sendable {
    let input: InputSpec
    let interface: String
    /// RX queues served (AF_XDP); one entry for AF_PACKET
    let queues: [Int]
    let mode: LiveMode
    let zeroCopy: Bool
    /// one Counters per lane after the first (lane 0 uses the shared one)
    var extraCounters: [Counters] = []

    init(input: InputSpec, interface: String, queues: [Int], mode: LiveMode, zeroCopy: Bool) {
        self.input = input
        self.interface = interface
        self.queues = queues
        self.mode = mode
        self.zeroCopy = zeroCopy
    }

    /// Opens the live source `input` names.
    static func open(_ input: InputSpec, options: LiveOptions, log: @escaping @Sendable (String) -> Void) throws(BrokerError) -> LiveIngress {
        switch input {
        case .afXDP(let iface, let queues): return try AFXDPIngress(input, iface: iface, queues: queues, options: options, log: log)
        case .afPacket(let iface): return try AFPacketIngress(input, iface: iface, options: options, log: log)
        default: throw BrokerError("\(input.name) is not a live source")
        }
    }

    var lanes: Int { queues.count }
    var isLive: Bool { true }
    /// a signal ends a live run: lb does not wait for consumers to read what is left
    var drainsAtEnd: Bool { false }
    var stoppedEarly: String? { nil }
    var unreadBytes: Int { 0 }
    var xdpShunts: XDPShuntMap? { nil }

    func laneCounters(ringCount: Int) -> [Counters] {
        if extraCounters.isEmpty && lanes > 1 { extraCounters = (1..<lanes).map { _ in Counters(ringCount: ringCount) } }
        return extraCounters
    }

    func report(to ops: Operations, _ reporter: StatsReporter, shared: SharedState) {
        ops.ingress = { self.status(shared: shared.counters) }
        reporter.upstreamDrops = { self.upstreamDrops() }
    }

    /// Runs one dispatch thread per lane until a stop is requested; returns when all ended.
    func run(config: DispatchConfig, groups: [[RingMemory]], shared: SharedState, cpus: [Int], log: @escaping @Sendable (String) -> Void) {
        var dispatch = config
        dispatch.backpressure = false
        // consumers are woken per 128 packets or per millisecond, not per packet (see DispatchConfig)
        if dispatch.publishBatch == 1 {
            dispatch.publishBatch = 128
            dispatch.publishDelayNanos = 1_000_000
        }
        let extra = laneCounters(ringCount: shared.ringCount)
        let job = LaneJob(ingress: self, config: dispatch, groups: groups, shared: shared, extra: extra, cpus: cpus, log: log)
        var threads: [pthread_t] = []
        for lane in 0..<lanes {
            threads.append(Threads.spawn("lb-rx\(queues[lane])") { job.run(lane: lane) })
        }
        for t in threads { Threads.join(t) }
    }

    /// Moves lane `lane`'s packets until a stop (the subclass makes the lane's source).
    func runLane(_ lane: Int, _ dispatcher: inout Dispatcher, batch: Int) { fatalError("a live ingress runs its lanes") }

    /// Packets lost before lb read them: the NIC's own drops (missed, FIFO, overrun) and the
    /// socket's (`socketDrops`). Not the interface's rx_dropped, which counts what the host's
    /// stack discarded.
    func upstreamDrops() -> UInt64 {
        var n: UInt64 = 0
        for name in ["rx_missed_errors", "rx_fifo_errors", "rx_over_errors"] { n &+= Sys.interfaceCounter(interface, name) }
        return n &+ socketDrops()
    }

    func socketDrops() -> UInt64 { 0 }

    /// The loss-by-stage part of the status: the interface's counters, then the subclass's.
    func status(shared: Counters) -> IngressStatus {
        var o = IngressStatus(source: input.name, mode: mode.rawValue, zeroCopy: zeroCopy, queues: queues.count)
        o.queuePackets = NamedCounts(queues.enumerated().map { lane, q in
            (String(q), (lane == 0 ? shared : extraCounters[lane - 1]).get(.received))
        })
        o.interfaceCounters = NamedCounts(["rx_packets", "rx_bytes", "rx_dropped", "rx_missed_errors", "rx_fifo_errors",
                                           "rx_over_errors", "rx_errors"].map { ($0, Sys.interfaceCounter(interface, $0)) })
        addSocketStatus(&o)
        return o
    }

    func addSocketStatus(_ o: inout IngressStatus) {}
}

/// What each dispatch thread needs (shared read-only between them; memberwise init).
struct LaneJob: @unchecked Sendable {
    let ingress: LiveIngress
    let config: DispatchConfig
    let groups: [[RingMemory]]
    let shared: SharedState
    let extra: [Counters]
    let cpus: [Int]
    let log: @Sendable (String) -> Void

    func run(lane: Int) {
        if !cpus.isEmpty {
            let cpu = cpus[lane % cpus.count]
            do { try Threads.pin(cpu: cpu) } catch { log("cannot pin the thread of queue \(ingress.queues[lane]) to cpu \(cpu): \(error)") }
        }
        var dispatcher = Dispatcher(config: config, groups: groups, shared: shared, lane: lane,
                                    counters: lane == 0 ? nil : extra[lane - 1])
        ingress.runLane(lane, &dispatcher, batch: config.batch)
    }
}
