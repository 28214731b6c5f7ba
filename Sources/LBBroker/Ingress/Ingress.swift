import LBRing

/// What lb reads packets from, whatever its kind: a capture file or a UDP socket (one lane, on
/// the serving thread), AF_XDP (one lane per RX queue, each on its own thread) or AF_PACKET.
/// `Broker.serve` is the one serve path for all of them; kinds differ only here.
protocol Ingress: AnyObject {
    /// lanes of every ring: one per dispatch thread
    var lanes: Int { get }
    /// a live source never waits for a consumer (a full ring drops); a capture replay does
    var isLive: Bool { get }
    /// after the end of the input lb waits (up to --drain-timeout) for consumers to read all
    var drainsAtEnd: Bool { get }
    /// why the input ended before its end, if it did (a damaged capture file), and how many of
    /// its bytes were not read
    var stoppedEarly: String? { get }
    var unreadBytes: Int { get }
    /// counters for lanes 1... (lane 0 counts into SharedState's)
    func laneCounters(ringCount: Int) -> [Counters]
    /// where flows shunted in every group can be dropped before lb sees them (AF_XDP), or nil
    var xdpShunts: XDPShuntMap? { get }
    /// hooks the source's own status (udp::, AF_XDP ...) and upstream losses into the reports
    func report(to ops: Operations, _ reporter: StatsReporter, shared: SharedState)
    /// moves packets until the input ends or a stop is requested
    func run(config: DispatchConfig, groups: [[RingMemory]], shared: SharedState, cpus: [Int], log: @escaping @Sendable (String) -> Void)
}

/// A one-lane source read on the serving thread: a capture file, or a UDP socket.
final class SingleLaneIngress<S: PacketSource & ~Copyable>: Ingress {
    var source: S
    /// the udp:: ingress's counters (nil for a capture file)
    let udp: UDPStats?

    init(_ source: consuming S, udp: UDPStats? = nil) {
        self.source = source
        self.udp = udp
    }

    var lanes: Int { 1 }
    var isLive: Bool { source.isLive }
    var drainsAtEnd: Bool { true }
    var stoppedEarly: String? { source.stoppedEarly }
    var unreadBytes: Int { source.unreadBytes }
    func laneCounters(ringCount: Int) -> [Counters] { [] }
    var xdpShunts: XDPShuntMap? { nil }

    func report(to ops: Operations, _ reporter: StatsReporter, shared: SharedState) {
        guard let udp else { return }
        ops.udp = udp
        reporter.upstreamDrops = { udp.get("kernel_drops") ?? 0 }
    }

    func run(config: DispatchConfig, groups: [[RingMemory]], shared: SharedState, cpus: [Int], log: @escaping @Sendable (String) -> Void) {
        var dispatch = config
        dispatch.backpressure = !source.isLive
        var dispatcher = Dispatcher(config: dispatch, groups: groups, shared: shared)
        dispatcher.run(&source)
    }
}
