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

/// A live ingress: lb's XDP program and one AF_XDP socket per RX queue, or one TPACKET_V3
/// socket. Owns the kernel objects (closed in deinit: closing the bpf_link detaches the
/// program, and the kernel does the same if lb is killed). One dispatch thread per queue,
/// each with its own Dispatcher writing into its own lane of every ring and its own Counters.
public final class LiveIngress: @unchecked Sendable {
    public let input: InputSpec
    public let interface: String
    /// RX queues served (AF_XDP); one entry for AF_PACKET
    public let queues: [Int]
    let prog: OpaquePointer?
    let sockets: [OpaquePointer]
    let tpacket: OpaquePointer?
    let lockFD: Int32
    /// "native" or "generic" (AF_XDP), "tpacket_v3" (AF_PACKET)
    public let mode: String
    public let zeroCopy: Bool
    /// AF_XDP: how each queue's thread naps (each starts from this one); nil for AF_PACKET
    let nap: Nap?
    /// one Counters per lane (lane 0 uses the shared one)
    var laneCounters: [Counters] = []
    /// AF_XDP: the NAPI settings lb changed, put back at the end
    var napiDefer: NAPIDefer? = nil
    /// where the restore reports a failure
    var log: (@Sendable (String) -> Void)? = nil

    public var lanes: Int { queues.count }

    init(input: InputSpec, interface: String, queues: [Int], prog: OpaquePointer?, sockets: [OpaquePointer],
         tpacket: OpaquePointer?, lockFD: Int32, mode: String, zeroCopy: Bool, nap: Nap? = nil) {
        self.input = input
        self.interface = interface
        self.queues = queues
        self.prog = prog
        self.sockets = sockets
        self.tpacket = tpacket
        self.lockFD = lockFD
        self.mode = mode
        self.zeroCopy = zeroCopy
        self.nap = nap
    }

    deinit {
        napiDefer?.restore(log: log ?? { _ in })
        for s in sockets { lbx_xsk_close(s) }
        if let prog { lbx_prog_close(prog) }
        if let tpacket { lbx_tpacket_close(tpacket) }
        if lockFD >= 0 { Sys.close(lockFD) }
    }

    static func errorText(_ buf: [CChar]) -> String {
        buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Where lb's compiled XDP program is.
    static func findObject(_ explicit: String?) throws(BrokerError) -> String {
        if let explicit {
            guard access(explicit, R_OK) == 0 else { throw BrokerError("--xdp-object \(explicit): cannot read it") }
            return explicit
        }
        if let env = getenv("LB_XDP_OBJECT").map({ String(cString: $0) }), !env.isEmpty {
            guard access(env, R_OK) == 0 else { throw BrokerError("$LB_XDP_OBJECT=\(env): cannot read it") }
            return env
        }
        var candidates: [String] = []
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 {
            let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var dir = exe
            if let slash = dir.lastIndex(of: "/") { dir = String(dir[..<slash]) }
            candidates += [dir + "/lb_xdp.o", dir + "/../bpf/lb_xdp.o", dir + "/../../bpf/lb_xdp.o",
                           dir + "/../../.build/bpf/lb_xdp.o", dir + "/../lib/lb/lb_xdp.o"]
        }
        candidates.append("/usr/local/lib/lb/lb_xdp.o")
        for c in candidates where access(c, R_OK) == 0 { return c }
        throw BrokerError("lb's XDP program (lb_xdp.o) was not found (looked in \(candidates.joined(separator: ", "))); "
                          + "build it with bpf/build.sh (scripts/setup does), or name it with --xdp-object or $LB_XDP_OBJECT")
    }

    /// Opens the live source named by `input`.
    public static func open(_ input: InputSpec, options: LiveOptions, log: (String) -> Void) throws(BrokerError) -> LiveIngress {
        switch input {
        case .afXDP(let iface, let queues): return try openXDP(input, iface: iface, queues: queues, options: options, log: log)
        case .afPacket(let iface): return try openPacket(input, iface: iface, options: options, log: log)
        default: throw BrokerError("\(input.name) is not a live source")
        }
    }

    static func openPacket(_ input: InputSpec, iface: String, options: LiveOptions, log: (String) -> Void) throws(BrokerError) -> LiveIngress {
        guard Sys.interfaceIndex(iface) != nil else { throw BrokerError("af_packet:\(iface): no such interface") }
        if options.divert != nil { throw BrokerError("--divert needs af_xdp (AF_PACKET receives a copy: nothing is taken from the kernel)") }
        var err = [CChar](repeating: 0, count: 512)
        var t: OpaquePointer? = nil
        let rc = lbx_tpacket_open(iface, options.blockSize, options.blockCount, 5, &t, &err, err.count)
        guard rc == 0, let t else { throw BrokerError(errorText(err)) }
        log("af_packet:\(iface): TPACKET_V3 ring of \(options.blockCount) blocks of \(options.blockSize >> 10) KiB")
        return LiveIngress(input: input, interface: iface, queues: [0], prog: nil, sockets: [], tpacket: t, lockFD: -1,
                           mode: "tpacket_v3", zeroCopy: false)
    }

    static func openXDP(_ input: InputSpec, iface: String, queues wanted: [Int]?, options: LiveOptions,
                        log: (String) -> Void) throws(BrokerError) -> LiveIngress {
        guard let ifindex = Sys.interfaceIndex(iface) else { throw BrokerError("af_xdp:\(iface): no such interface") }
        // One lb per interface: a lock file names the running one.
        var lockFD: Int32 = -1
        let lockDir = getuid() == 0 ? "/run/lb" : RunDirectory.resolve(nil)
        let lockPath = lockDir + "/xdp-\(iface)-\(Sys.netnsInode()).lock"
        if (try? Sys.mkdirs(lockDir)) != nil {
            var held = false
            do {
                if let fd = try Sys.tryLockFile(lockPath) { lockFD = fd } else { held = true }
            } catch {
                log("warning: cannot lock \(lockPath): \(error)")
            }
            if held {
                let pid = Sys.readSmallFile(lockPath)?.split(separator: "\n").first.map(String.init) ?? "?"
                throw BrokerError("another lb (pid \(pid)) already runs on \(iface) (\(lockPath))")
            }
        }
        var ok = false
        defer { if !ok && lockFD >= 0 { Sys.close(lockFD) } }

        let count = Int(lbx_rx_queue_count(iface))
        let queues = wanted ?? Array(0..<max(count, 1))
        for q in queues where q < 0 || q >= max(count, 1) || q >= Int(LB_XDP_MAX_QUEUES) {
            throw BrokerError("af_xdp:\(iface)@\(q): \(iface) has \(count) RX queue(s) (0-\(count - 1))")
        }

        let object = try findObject(options.xdpObject)
        var err = [CChar](repeating: 0, count: 512)
        var p: OpaquePointer? = nil
        guard lbx_prog_open(object, &p, &err, err.count) == 0, let prog = p else { throw BrokerError(errorText(err)) }
        var sockets: [OpaquePointer] = []
        defer {
            if !ok {
                for s in sockets { lbx_xsk_close(s) }
                lbx_prog_close(prog)
            }
        }
        var cfg = DivertFilter.config(options.divert)
        guard lbx_prog_configure(prog, &cfg, &err, err.count) == 0 else { throw BrokerError(errorText(err)) }

        var mode = "native"
        switch options.xdpMode {
        case .native:
            guard lbx_prog_attach(prog, ifindex, Int32(LBX_MODE_NATIVE), &err, err.count) == 0 else { throw BrokerError(errorText(err)) }
        case .generic:
            guard lbx_prog_attach(prog, ifindex, Int32(LBX_MODE_GENERIC), &err, err.count) == 0 else { throw BrokerError(errorText(err)) }
            mode = "generic"
        case .auto:
            let rc = lbx_prog_attach(prog, ifindex, Int32(LBX_MODE_NATIVE), &err, err.count)
            if rc == -EBUSY { throw BrokerError(errorText(err)) }
            if rc != 0 {
                log("\(iface): native XDP is not available (\(errorText(err))); falling back to generic (SKB) mode, which is slower")
                guard lbx_prog_attach(prog, ifindex, Int32(LBX_MODE_GENERIC), &err, err.count) == 0 else {
                    throw BrokerError(errorText(err))
                }
                mode = "generic"
            }
        }
        var zeroCopy = true
        for q in queues {
            var s: OpaquePointer? = nil
            guard lbx_xsk_open(iface, UInt32(q), options.frames, options.frameSize, mode == "generic" ? 1 : 0, 1, &s, &err, err.count) == 0,
                  let s else { throw BrokerError(errorText(err)) }
            sockets.append(s)
            if lbx_xsk_zerocopy(s) == 0 { zeroCopy = false }
            guard lbx_prog_set_socket(prog, UInt32(q), lbx_xsk_fd(s), &err, err.count) == 0 else { throw BrokerError(errorText(err)) }
        }
        if queues.count > 1,
           let advice = rssAdvice(iface: iface, udp4: lbx_udp_rss_uses_ports(iface, 0), udp6: lbx_udp_rss_uses_ports(iface, 1)) {
            log(advice)
        }
        let what = options.divert == nil ? "all traffic" : "traffic matching --divert (the rest goes to the kernel)"
        log("af_xdp:\(iface): \(mode) XDP, \(zeroCopy ? "zero-copy" : "copy mode (no zero-copy in this driver/mode)"), "
            + "queue(s) \(queues.map(String.init).joined(separator: ",")), \(what); "
            + "per queue \(options.frames) UMEM frames of \(options.frameSize) bytes, an RX ring of \(options.frames / 2)")
        // AF_XDP's poll() wakes lb per packet when the ring is empty: while traffic flows lb naps
        // instead, up to 5 ms (its TPACKET_V3 block timeout), and never longer than it takes to
        // fill a quarter of the RX ring (an eighth of the UMEM frames) at the rate just seen: the
        // rest is for the time a busy CPU keeps lb waiting after its nap.
        let nap = Nap(maxNanos: options.napMaxNanos, roomPackets: UInt64(options.frames / 8))
        ok = true
        let live = LiveIngress(input: input, interface: iface, queues: queues, prog: prog, sockets: sockets, tpacket: nil,
                               lockFD: lockFD, mode: mode, zeroCopy: zeroCopy, nap: nap)
        live.napiDefer = NAPIDefer.apply(iface: iface, micros: options.napiDeferMicros, log: log)
        return live
    }

    /// What to tell the operator when lb serves several RX queues and the NIC spreads UDP over
    /// them by ports (results of `lbx_udp_rss_uses_ports`: 1 yes, 0 no, < 0 unknown). The first
    /// fragment of a datagram carries the ports and the others do not, so they can land on
    /// different queues, and lb joins fragments per queue. Hashing UDP on addresses only keeps
    /// them together. (Which queue a flow's two directions use does not matter: lb hashes flows
    /// itself, symmetrically, across all queues.)
    static func rssAdvice(iface: String, udp4: Int32, udp6: Int32) -> String? {
        var families: [String] = []
        if udp4 == 1 { families.append("udp4") }
        if udp6 == 1 { families.append("udp6") }
        guard !families.isEmpty else { return nil }
        let fix = families.map { "ethtool -N \(iface) rx-flow-hash \($0) sd" }.joined(separator: "; ")
        return "warning: \(iface) spreads UDP over its RX queues by ports (\(families.joined(separator: ", "))): the fragments "
            + "of one datagram can reach different queues and lb joins fragments per queue, so such fragments may reach "
            + "another worker than their flow (fragments.unmatched) and fragmented tunnel packets stay encapsulated "
            + "(fragments.incomplete); hash UDP on addresses only: \(fix)"
    }

    /// Counters for lanes 1..., to be summed with the shared one by the reporter.
    func makeLaneCounters(ringCount: Int) -> [Counters] {
        if laneCounters.isEmpty && lanes > 1 {
            laneCounters = (1..<lanes).map { _ in Counters(ringCount: ringCount) }
        }
        return laneCounters
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
        let extra = makeLaneCounters(ringCount: shared.ringCount)
        let job = LaneJob(ingress: self, config: dispatch, groups: groups, shared: shared, extra: extra, cpus: cpus, log: log)
        var threads: [pthread_t] = []
        for lane in 0..<lanes {
            threads.append(Threads.spawn("lb-rx\(queues[lane])") { job.run(lane: lane) })
        }
        for t in threads { Threads.join(t) }
    }

    /// Packets lost before lb read them: the NIC's own drops (missed, FIFO, overrun) and the
    /// sockets' (AF_XDP: no fill-ring frame or a full RX ring; AF_PACKET: tp_drops). Not the
    /// interface's rx_dropped, which counts what the host's stack discarded.
    func upstreamDrops() -> UInt64 {
        var n: UInt64 = 0
        for name in ["rx_missed_errors", "rx_fifo_errors", "rx_over_errors"] { n &+= Sys.interfaceCounter(interface, name) }
        let x = xskTotals()
        n &+= x.rx_dropped &+ x.rx_ring_full
        if let t = tpacketStats() { n &+= t.drops }
        return n
    }

    /// XDP_STATISTICS summed over the AF_XDP sockets (zeros without any).
    func xskTotals() -> lbx_xsk_stats {
        var sum = lbx_xsk_stats()
        for s in sockets {
            var one = lbx_xsk_stats()
            _ = lbx_xsk_stats(s, &one)
            sum.rx_dropped &+= one.rx_dropped
            sum.rx_invalid_descs &+= one.rx_invalid_descs
            sum.rx_ring_full &+= one.rx_ring_full
            sum.rx_fill_ring_empty_descs &+= one.rx_fill_ring_empty_descs
            sum.multibuffer &+= one.multibuffer
            sum.truncated &+= one.truncated
        }
        return sum
    }

    /// The AF_PACKET socket's counters, when the input is AF_PACKET.
    func tpacketStats() -> lbx_tpacket_stats? {
        guard let tpacket else { return nil }
        var s = lbx_tpacket_stats()
        _ = lbx_tpacket_stats(tpacket, &s)
        return s
    }

    /// The loss-by-stage block of the stats: the interface's counters, the XDP program's,
    /// the AF_XDP sockets' (XDP_STATISTICS) or the AF_PACKET socket's.
    func statsObject(shared: Counters) -> IngressStatus {
        var o = IngressStatus(source: input.name, mode: mode, zeroCopy: zeroCopy, queues: queues.count)
        o.queuePackets = NamedCounts(queues.enumerated().map { lane, q in
            (String(q), (lane == 0 ? shared : laneCounters[lane - 1]).get(.received))
        })
        o.interfaceCounters = NamedCounts(["rx_packets", "rx_bytes", "rx_dropped", "rx_missed_errors", "rx_fifo_errors",
                                           "rx_over_errors", "rx_errors"].map { ($0, Sys.interfaceCounter(interface, $0)) })
        if let prog {
            var c = [UInt64](repeating: 0, count: Int(LB_XDP_NSTATS))
            lbx_prog_counters(prog, &c)
            o.xdp = NamedCounts([("diverted", c[Int(LB_XDP_DIVERTED)]), ("passed_to_kernel", c[Int(LB_XDP_PASSED)]),
                                 ("no_socket", c[Int(LB_XDP_NO_SOCKET)]), ("passed_not_ip", c[Int(LB_XDP_SHORT)])])
            let sum = xskTotals()
            o.xsk = NamedCounts([("rx_dropped", sum.rx_dropped), ("rx_invalid_descs", sum.rx_invalid_descs),
                                 ("rx_ring_full", sum.rx_ring_full), ("rx_fill_ring_empty_descs", sum.rx_fill_ring_empty_descs),
                                 ("multi_buffer_frames", sum.multibuffer), ("truncated_frames", sum.truncated)])
        }
        if let s = tpacketStats() {
            o.afPacket = NamedCounts([("tp_packets", s.packets), ("tp_drops", s.drops), ("tp_freeze_q_cnt", s.freeze_q),
                                      ("vlan_tags_restored", s.vlan_restored), ("socket_errors", s.socket_errors)])
        }
        return o
    }
}

/// What each dispatch thread needs (shared read-only between them).
final class LaneJob: @unchecked Sendable {
    let ingress: LiveIngress
    let config: DispatchConfig
    let groups: [[RingMemory]]
    let shared: SharedState
    let extra: [Counters]
    let cpus: [Int]
    let log: @Sendable (String) -> Void

    init(ingress: LiveIngress, config: DispatchConfig, groups: [[RingMemory]], shared: SharedState, extra: [Counters],
         cpus: [Int], log: @escaping @Sendable (String) -> Void) {
        self.ingress = ingress
        self.config = config
        self.groups = groups
        self.shared = shared
        self.extra = extra
        self.cpus = cpus
        self.log = log
    }

    func run(lane: Int) {
        if !cpus.isEmpty {
            let cpu = cpus[lane % cpus.count]
            do { try Threads.pin(cpu: cpu) } catch { log("cannot pin the thread of queue \(ingress.queues[lane]) to cpu \(cpu): \(error)") }
        }
        var dispatcher = Dispatcher(config: config, groups: groups, shared: shared, lane: lane,
                                    counters: lane == 0 ? nil : extra[lane - 1])
        if let t = ingress.tpacket {
            var source = TPacketSource(t, name: ingress.input.name, batch: config.batch)
            dispatcher.run(&source)
        } else {
            var source = XSKQueueSource(ingress.sockets[lane], lane: UInt32(lane), name: ingress.input.name, batch: config.batch,
                                        nap: ingress.nap ?? Nap(maxNanos: 0, roomPackets: 0))
            dispatcher.run(&source)
        }
    }
}

/// One AF_XDP socket (one RX queue) as a packet source. When it has emptied its RX ring while
/// traffic flows it naps (see `Nap`) before it looks again; when idle it sleeps in poll().
struct XSKQueueSource: PacketSource, ~Copyable {
    let xsk: OpaquePointer
    let lane: UInt32
    let pkts: UnsafeMutablePointer<lbx_pkt>
    let capacity: Int
    let name: String
    var nap: Nap
    /// how long to sleep before the next look (set when a batch came back short)
    var pendingNap: UInt64 = 0
    var finished: Bool { false }
    var isLive: Bool { true }

    init(_ xsk: OpaquePointer, lane: UInt32, name: String, batch: Int, nap: Nap) {
        self.xsk = xsk
        self.lane = lane
        self.name = name
        self.nap = nap
        capacity = batch
        pkts = .allocate(capacity: batch)
    }

    deinit { pkts.deallocate() }

    mutating func receive(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        // The dispatcher published everything after the short batch that set this.
        if pendingNap > 0 {
            Sys.sleep(nanos: pendingNap)
            pendingNap = 0
        }
        let want = min(max, capacity)
        // between naps: look without poll(); otherwise poll() until a packet comes (at most
        // 100 ms, so that a stop request is seen)
        let n = Int(lbx_xsk_receive(xsk, pkts, UInt32(want), nap.napping ? 0 : 100))
        let bytes = fill(frames, n)
        nap.count(packets: n, bytes: bytes)
        // a short batch naps only when the RX ring is empty (not when a multi-buffer frame cut it)
        if n < want && lbx_xsk_rx_waiting(xsk) == 0 { pendingNap = nap.next(now: Sys.monoNanos()) }
        return n
    }

    mutating func drain(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        let n = Int(lbx_xsk_receive(xsk, pkts, UInt32(min(max, capacity)), 0))
        _ = fill(frames, n)
        return n
    }

    /// Frames for the n packets just taken; returns their bytes. AF_XDP gives no timestamp: the
    /// batch's arrival time stands for each frame's.
    func fill(_ frames: UnsafeMutablePointer<Frame>, _ n: Int) -> Int {
        let now = n > 0 ? Sys.wallNanos() : 0
        var bytes = 0
        for i in 0..<n {
            let p = pkts[i]
            bytes &+= Int(p.len)
            frames[i] = Frame(bytes: UnsafeRawBufferPointer(start: p.data, count: Int(p.len)), wireLength: Int(p.wire_len),
                              timestampNanos: now, linkType: 1, input: lane)
        }
        return bytes
    }
}

/// An AF_PACKET TPACKET_V3 socket as a packet source. Sleeps in poll() when idle.
struct TPacketSource: PacketSource, ~Copyable {
    let t: OpaquePointer
    let pkts: UnsafeMutablePointer<lbx_pkt>
    let stamps: UnsafeMutablePointer<UInt64>
    let capacity: Int
    let name: String
    var finished: Bool { false }
    var isLive: Bool { true }

    init(_ t: OpaquePointer, name: String, batch: Int) {
        self.t = t
        self.name = name
        capacity = batch
        pkts = .allocate(capacity: batch)
        stamps = .allocate(capacity: batch)
    }

    deinit {
        pkts.deallocate()
        stamps.deallocate()
    }

    mutating func receive(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        receive(into: frames, max: max, timeoutMillis: 10)
    }

    mutating func drain(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        receive(into: frames, max: max, timeoutMillis: 0)
    }

    mutating func receive(into frames: UnsafeMutablePointer<Frame>, max: Int, timeoutMillis: Int32) -> Int {
        let n = Int(lbx_tpacket_receive(t, pkts, stamps, UInt32(min(max, capacity)), timeoutMillis))
        for i in 0..<n {
            let p = pkts[i]
            frames[i] = Frame(bytes: UnsafeRawBufferPointer(start: p.data, count: Int(p.len)), wireLength: Int(p.wire_len),
                              timestampNanos: stamps[i], linkType: 1, input: 0)
        }
        return n
    }
}
