import ArgumentParser
import LBBroker
import LBCore
import LBRing
import LBSys

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read packets, decapsulate, hash the inner flow, and deliver each packet to one ring of every group.")

    @Option(name: .shortAndLong, help: "Input: pcap:FILE (classic pcap or pcapng); af_xdp:IFACE[@Q,...] or IFACE (AF_XDP with lb's XDP program); af_packet:IFACE; udp::ADDR:PORT[:ENCAP][:dlt=LINK] (mirrored traffic on a UDP socket; ENCAP vxlan, geneve, geneve+vxlan, raw, skip=N).")
    var input: String

    @Option(name: [.customShort("p"), .long], help: "A group of rings, [NAME:]N; repeat for more groups. Every group gets every packet. Default: one group of 2 named after the input.")
    var pipes: [String] = []

    @Option(name: .customShort("o"), help: "Print JSON stats lines every SECS seconds (a final set is always printed).")
    var statsInterval: Double = 0

    @Option(name: [.customShort("w"), .customLong("wait")], help: "Wait up to SECS seconds for every ring to have a consumer before reading the input.")
    var wait: Double = 10

    @Option(help: "strip: deliver the inner packet (default); keep: deliver the original frame, hashed on the inner flow.")
    var decap: String = "strip"

    @Option(help: "Hash on the 5-tuple (5), addresses and protocol (3), or addresses only (2).")
    var hash: Int = 5

    @Flag(help: "Put the outermost VLAN id into the hash.")
    var hashVlan = false

    @Flag(help: "Put the innermost VNI / GRE key / GTP TEID into the hash.")
    var hashVni = false

    @Option(help: "Hash seed (all lb instances with the same seed and options agree on flow placement).")
    var seed: UInt64?

    @Option(help: "Another UDP port that carries a tunnel, KIND:PORT (vxlan, geneve, gtpu, teredo, ayiya, gre); repeatable.")
    var tunnelPort: [String] = []

    @Flag(help: "Do not use the standard tunnel ports (vxlan:4789 geneve:6081 gtpu:2152 teredo:3544 ayiya:5072 gre:4754).")
    var noDefaultTunnelPorts = false

    @Option(help: "Remove at most N nested tunnels.")
    var maxDepth: Int = 8

    @Option(help: "Descriptors per ring (a power of two).")
    var ringSlots: Int = RingGeometry.default.slots

    @Option(help: "Packet bytes per ring (a power of two; k, M, G suffixes).")
    var ringSize: String = "16M"

    @Option(help: "Longest packet a ring stores; longer ones are truncated and counted.")
    var slotSize: Int = RingGeometry.default.maxCaplen

    @Option(help: "Directory of the control sockets (default: $LB_RUN_DIR, /run/lb for root, else $XDG_RUNTIME_DIR/lb).")
    var runDir: String?

    @Option(help: "Capture replay: stop waiting for a consumer that makes no progress for SECS seconds (its packets are then dropped and counted).")
    var stallTimeout: Double = 30

    @Option(help: "Capture replay: after the end, wait up to SECS seconds for consumers to read everything.")
    var drainTimeout: Double = 60

    @Option(help: "Capture replay: packets per second (0: as fast as the consumers read).")
    var replayRate: UInt64 = 0

    @Option(help: "Seconds (of packet time) to keep fragments that wait for the rest of their datagram.")
    var fragTimeout: Double = 2

    @Option(name: .customShort("b"), help: "Frames taken from the input at a time.")
    var batch: Int = 64

    @Option(help: "Failover: SECS after a consumer detaches or stops consuming (packets waiting, none released), move its ring's buckets to the group's live rings; they move back when it returns. 'off' disables. Default: 5 for live input, off for a capture replay.")
    var failover: String?

    @Option(help: "Serve Prometheus metrics on ADDR:PORT (e.g. 127.0.0.1:9917, [::1]:9917; port 0 picks a free one).")
    var metrics: String?

    @Option(help: "The group whose members may attach to the rings (control sockets 0660 and ring memory 0640 of this group; run directory 0750).")
    var ringGroup: String?
    @Option(help: "udp:: input: the socket receive buffer to ask for (k, M, G suffixes); the kernel may give less (logged, and in the stats).")
    var rcvbuf: String = "64M"

    @Flag(help: "udp:: input: share the port with other lb processes (SO_REUSEPORT); the kernel spreads datagrams over them by the outer header.")
    var reuseport = false

    @Option(help: "udp:: input: how many VNIs (most packets first) the stats list.")
    var vniTop: Int = 10

    @Option(help: "AF_XDP: send only matching traffic to lb, the rest to the kernel, e.g. 'udp dst port 4789' (terms: tcp, udp, proto N, dst port N, joined by 'or').")
    var divert: String?

    @Option(help: "AF_XDP: attach lb's XDP program in native (driver) mode, generic (SKB) mode, or auto (native, else generic).")
    var xdpMode: String = "auto"

    @Option(help: "AF_XDP: RX queues to serve, e.g. 0,1 (default: all; also IFACE@Q).")
    var queues: String?

    @Option(help: "Pin the dispatch threads (one per RX queue) to these CPUs, e.g. 2,3.")
    var cpus: String?

    @Option(help: "AF_XDP: UMEM frames of 2 KiB per RX queue, a power of two from 1024 to 1048576; the RX ring holds half of them (default 16384: 32 MiB per queue, 8192 packets of buffering).")
    var xdpFrames: UInt32?

    @Option(help: "AF_XDP: have the kernel run the interface's NAPI from a USEC µs timer while traffic flows (sysfs gro_flush_timeout and napi_defer_hard_irqs, restored at exit); 0 leaves the interface's settings alone.")
    var napiDefer: UInt32?

    @Option(help: "lb's compiled XDP program (default: $LB_XDP_OBJECT, then beside the executable, then /usr/local/lib/lb/lb_xdp.o).")
    var xdpObject: String?

    @Option(help: "After setting up the sockets, the XDP program and the rings, run as this user.")
    var user: String?

    func validate() throws {
        guard decap == "strip" || decap == "keep" else { throw ValidationError("--decap \(decap): use strip or keep") }
        guard [5, 3, 2].contains(hash) else { throw ValidationError("--hash \(hash): use 5 (5-tuple), 3 (addresses and protocol) or 2 (addresses)") }
        guard maxDepth >= 0 && maxDepth <= 32 else { throw ValidationError("--max-depth \(maxDepth): use 0 to 32") }
        guard batch >= 1 && batch <= 1024 else { throw ValidationError("-b \(batch): use 1 to 1024") }
        guard wait >= 0, drainTimeout >= 0, stallTimeout > 0, statsInterval >= 0, fragTimeout > 0 else {
            throw ValidationError("times must not be negative (-o, -w, --drain-timeout, --stall-timeout, --frag-timeout)")
        }
    }

    func makeConfig() throws -> BrokerConfig {
        let spec = try parseInput(input, queues: queues, replayRate: replayRate)
        var config: BrokerConfig
        switch spec {
        case .pcapFile(let path, _): config = try makeConfig(spec, defaultName: defaultGroupName(for: path))
        case .afXDP(let iface, _), .afPacket(let iface): config = try makeConfig(spec, defaultName: defaultGroupName(for: iface))
        case .udp: return try makeUDPConfig()
        }
        return config
    }

    /// `-i udp::...`: the listening port carries the chosen tunnel in the decoder's port table.
    func makeUDPConfig() throws -> BrokerConfig {
        let spec: DatagramSpec
        do { spec = try DatagramSpec.parse(input) } catch { throw ValidationError("-i \(error)") }
        guard vniTop >= 0 else { throw ValidationError("--vni-top \(vniTop): use 0 or more") }
        var options = UDPOptions()
        options.rcvbuf = try parseSize(rcvbuf, option: "--rcvbuf")
        options.reusePort = reuseport
        options.vniTop = vniTop
        var config = try makeConfig(.udp(spec, options), defaultName: "udp\(spec.port)")
        if let kind = spec.encap.tunnelKind {
            var ports = config.dispatch.decode.tunnelPorts
            ports.removeAll { $0.port == spec.port }
            ports.append(TunnelPort(spec.port, kind))
            guard ports.count <= TunnelPortTable.capacity else { throw ValidationError("--tunnel-port: too many tunnel ports") }
            config.dispatch.decode.tunnelPorts = ports
        }
        return config
    }

    func makeConfig(_ spec: InputSpec, defaultName: String) throws -> BrokerConfig {
        var groups = try pipes.map { try parseGroup($0, defaultName: defaultName) }
        if groups.isEmpty { groups = [GroupSpec(name: defaultName, count: 2)] }
        var config = BrokerConfig(input: spec, groups: groups)
        config.live = try liveOptions()
        switch spec {
        case .afXDP, .afPacket: break
        default:
            if divert != nil || cpus != nil || xdpObject != nil || xdpMode != "auto" || xdpFrames != nil || napiDefer != nil {
                throw ValidationError("--divert, --cpus, --xdp-mode, --xdp-frames, --napi-defer and --xdp-object are for live interfaces (af_xdp:IFACE, af_packet:IFACE)")
            }
        }
        config.user = user
        config.geometry = RingGeometry(slots: ringSlots, dataBytes: try parseSize(ringSize, option: "--ring-size"),
                                       maxCaplen: slotSize, lanes: 1)
        var ports = noDefaultTunnelPorts ? [] : DecodeConfig.defaultTunnelPorts
        for t in tunnelPort {
            let p = try parseTunnelPort(t)
            ports.removeAll { $0.port == p.port }
            ports.append(p)
        }
        guard ports.count <= TunnelPortTable.capacity else {
            throw ValidationError("--tunnel-port: at most \(TunnelPortTable.capacity) tunnel ports in all (the \(DecodeConfig.defaultTunnelPorts.count) standard ones count unless --no-default-tunnel-ports)")
        }
        config.dispatch.decode = DecodeConfig(tunnelPorts: ports, maxDepth: maxDepth, keepEncapsulation: decap == "keep",
                                              tuple: TupleMode(rawValue: UInt8(hash))!, hashVLAN: hashVlan, hashVNI: hashVni,
                                              seeds: seed.map { HashSeeds(seed: $0) } ?? .standard)
        config.dispatch.stallTimeoutNanos = UInt64(stallTimeout * 1e9)
        config.dispatch.fragments.timeoutNanos = UInt64(fragTimeout * 1e9)
        config.dispatch.batch = batch
        config.runDir = runDir
        config.statsInterval = statsInterval
        config.waitForConsumers = wait
        config.drainTimeout = drainTimeout
        if let failover {
            if failover == "off" { config.failover = .off }
            else if let s = Double(failover), s >= 0 { config.failover = .after(s) }
            else { throw ValidationError("--failover \(failover): use SECS (e.g. 5) or off") }
        }
        config.metricsAddress = metrics
        config.ringGroup = ringGroup
        return config
    }

    func run() throws {
        let config = try makeConfig()
        do {
            let status = try Broker.run(config)
            throw ExitCode(status)
        } catch let e as BrokerError {
            try? printError("lb: \(e)")
            throw ExitCode(1)
        }
    }
}

extension Run {
    func liveOptions() throws -> LiveOptions {
        var o = LiveOptions()
        guard let mode = XDPMode(rawValue: xdpMode) else { throw ValidationError("--xdp-mode \(xdpMode): use auto, native or generic") }
        o.xdpMode = mode
        if let divert {
            do { o.divert = try DivertFilter(divert) } catch { throw ValidationError(error.description) }
        }
        if let cpus {
            o.cpus = try cpus.split(separator: ",").map {
                guard let c = Int($0), c >= 0 else { throw ValidationError("--cpus \(cpus): expected CPU numbers such as 0,2") }
                return c
            }
        }
        o.xdpObject = xdpObject
        if let xdpFrames {
            guard xdpFrames >= 1024, xdpFrames <= 1 << 20, xdpFrames & (xdpFrames - 1) == 0 else {
                throw ValidationError("--xdp-frames \(xdpFrames): use a power of two from 1024 to 1048576")
            }
            o.frames = xdpFrames
        }
        if let napiDefer {
            guard napiDefer <= 100_000 else { throw ValidationError("--napi-defer \(napiDefer): use 0 (off) to 100000 µs") }
            o.napiDeferMicros = napiDefer
        }
        return o
    }
}

/// `-i`: pcap:FILE, af_xdp:IFACE[@Q,...], af_packet:IFACE, or a bare interface name (AF_XDP).
func parseInput(_ text: String, queues: String?, replayRate: UInt64) throws -> InputSpec {
    func queueList(_ q: String) throws -> [Int] {
        try q.split(separator: ",").map {
            guard let n = Int($0), n >= 0 else { throw ValidationError("-i \(text): queues are numbers, as in eth1@0,1") }
            return n
        }
    }
    if text.hasPrefix("pcap:") {
        guard text.count > 5 else { throw ValidationError("-i pcap:FILE needs a file") }
        if queues != nil { throw ValidationError("--queues is for af_xdp inputs") }
        return .pcapFile(path: String(text.dropFirst(5)), rate: replayRate)
    }
    if text.hasPrefix("af_packet:") {
        let iface = String(text.dropFirst(10))
        guard !iface.isEmpty, !iface.contains("@"), queues == nil else {
            throw ValidationError("-i af_packet:IFACE needs an interface (one socket for all queues: no @queue or --queues)")
        }
        return .afPacket(interface: iface)
    }
    if text.hasPrefix("udp:") {
        do { return .udp(try DatagramSpec.parse(text), UDPOptions()) } catch { throw ValidationError("-i \(error)") }
    }
    let explicit = text.hasPrefix("af_xdp:")
    var rest = explicit ? String(text.dropFirst(7)) : text
    var qs: [Int]? = try queues.map(queueList)
    if let at = rest.firstIndex(of: "@") {
        qs = try queueList(String(rest[rest.index(after: at)...]))
        rest = String(rest[..<at])
    }
    guard !rest.isEmpty, !rest.contains(":"), !rest.contains("/"), rest.utf8.count < 16 else {
        throw ValidationError("-i \(text): use pcap:FILE, af_xdp:IFACE[@Q,...], IFACE or af_packet:IFACE")
    }
    if let qs, qs.isEmpty { throw ValidationError("-i \(text): no queue given") }
    if !explicit && Sys.interfaceIndex(rest) == nil {
        throw ValidationError("-i \(text): there is no interface \(rest) (a capture file is pcap:FILE)")
    }
    return .afXDP(interface: rest, queues: qs)
}
