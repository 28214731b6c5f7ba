import CLBXdp
import Glibc
import LBCore
import LBRing
import LBSys

/// AF_XDP: lb's XDP program on the interface and one AF_XDP socket (with its UMEM) per RX
/// queue, each held by an owner of its own (Owners.swift) that releases it once; what was
/// opened before a failure is released by its owner as the failed init unwinds.
final class AFXDPIngress: LiveIngress, @unchecked Sendable {
    let lock: InterfaceLock?
    let program: XDPAttachment
    let sockets: XSKSockets
    /// how each queue's thread naps (each starts from this one)
    let nap: Nap
    /// the NAPI settings lb changed, put back at the end
    let napiDefer: NAPIDefer?
    let log: @Sendable (String) -> Void
    /// the program's shunted flows (flows shunted in every group are dropped there)
    let shuntMap: XDPShuntMap
    override var xdpShunts: XDPShuntMap? { shuntMap }

    init(_ input: InputSpec, iface: String, queues wanted: [Int]?, options: LiveOptions,
         log: @escaping @Sendable (String) -> Void) throws(BrokerError) {
        guard let ifindex = Sys.interfaceIndex(iface) else { throw BrokerError("af_xdp:\(iface): no such interface") }
        // One lb per interface: a lock file names the running one.
        let lock = try InterfaceLock.take(iface: iface, log: log)
        let count = Int(lbx_rx_queue_count(iface))
        let queues = wanted ?? Array(0..<max(count, 1))
        for q in queues where q < 0 || q >= max(count, 1) || q >= Int(LB_XDP_MAX_QUEUES) {
            throw BrokerError("af_xdp:\(iface)@\(q): \(iface) has \(count) RX queue(s) (0-\(count - 1))")
        }
        var program = try XDPAttachment(object: try Self.findObject(options.xdpObject), divert: options.divert)
        try program.attach(ifindex: Int32(ifindex), iface: iface, options.xdpMode, log: log)
        let mode: XDPMode = program.mode ?? .native
        var sockets = XSKSockets(capacity: queues.count)
        var zeroCopy = true
        for q in queues {
            let s = try XSKSocket(iface: iface, queue: q, frames: options.frames, frameSize: options.frameSize, generic: mode == .generic)
            if !s.zeroCopy { zeroCopy = false }
            try program.setSocket(queue: q, s)
            sockets.append(s)
        }
        if queues.count > 1,
           let advice = Self.rssAdvice(iface: iface, udp4: lbx_udp_rss_uses_ports(iface, 0), udp6: lbx_udp_rss_uses_ports(iface, 1)) {
            log(advice)
        }
        let what = options.divert == nil ? "all traffic" : "traffic matching --divert (the rest goes to the kernel)"
        log("af_xdp:\(iface): \(mode.rawValue) XDP, \(zeroCopy ? "zero-copy" : "copy mode (no zero-copy in this driver/mode)"), "
            + "queue(s) \(queues.map(String.init).joined(separator: ",")), \(what); "
            + "per queue \(options.frames) UMEM frames of \(options.frameSize) bytes, an RX ring of \(options.frames / 2)")
        self.lock = lock
        shuntMap = XDPShuntMap(prog: program.prog, config: DivertFilter.config(options.divert))
        self.program = program
        self.sockets = sockets
        self.log = log
        // AF_XDP's poll() wakes lb per packet when the ring is empty: while traffic flows lb naps
        // instead, up to 5 ms (its TPACKET_V3 block timeout), and never longer than it takes to
        // fill a quarter of the RX ring (an eighth of the UMEM frames) at the rate just seen: the
        // rest is for the time a busy CPU keeps lb waiting after its nap.
        nap = Nap(maxNanos: options.napMaxNanos, roomPackets: UInt64(options.frames / 8))
        napiDefer = NAPIDefer.apply(iface: iface, micros: options.napiDeferMicros, log: log)
        super.init(input: input, interface: iface, queues: queues, mode: mode == .generic ? .generic : .native, zeroCopy: zeroCopy)
    }

    deinit { napiDefer?.restore(log: log) }

    override func runLane(_ lane: Int, _ dispatcher: inout Dispatcher, batch: Int) {
        var source = XSKQueueSource(sockets[lane], lane: UInt32(lane), name: input.name, batch: batch, nap: nap)
        dispatcher.run(&source)
    }

    /// AF_XDP's own losses: no fill-ring frame, or a full RX ring.
    override func socketDrops() -> UInt64 {
        let x = sockets.totals()
        return x.rx_dropped &+ x.rx_ring_full
    }

    override func addSocketStatus(_ o: inout IngressStatus) {
        let c = program.counters()
        o.xdp = NamedCounts([("diverted", c[Int(LB_XDP_DIVERTED)]), ("passed_to_kernel", c[Int(LB_XDP_PASSED)]),
                             ("no_socket", c[Int(LB_XDP_NO_SOCKET)]), ("passed_not_ip", c[Int(LB_XDP_SHORT)]),
                             ("shunted", c[Int(LB_XDP_SHUNTED)])])
        let sum = sockets.totals()
        o.xsk = NamedCounts([("rx_dropped", sum.rx_dropped), ("rx_invalid_descs", sum.rx_invalid_descs),
                             ("rx_ring_full", sum.rx_ring_full), ("rx_fill_ring_empty_descs", sum.rx_fill_ring_empty_descs),
                             ("multi_buffer_frames", sum.multibuffer), ("truncated_frames", sum.truncated)])
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
}
