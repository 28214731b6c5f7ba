import ArgumentParser
import LBBroker
import LBCore
import LBRing
import LBForward
import LBSys

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read packets, decapsulate, hash the inner flow, and deliver each packet to one ring of every group.")

    @Option(name: .shortAndLong, help: "Input: pcap:FILE (classic pcap or pcapng); af_xdp:IFACE[@Q,...] or IFACE (AF_XDP with lb's XDP program); af_packet:IFACE; udp::ADDR:PORT[:ENCAP][:dlt=LINK] (mirrored traffic on a UDP socket; ENCAP vxlan, geneve, geneve+vxlan, raw, skip=N).",
            transform: Arguments.input)
    var input: InputSpec

    @Option(name: [.customShort("p"), .long], help: "A group of rings, [NAME:]N; repeat for more groups. Every group gets every packet. Default: one group of 2 named after the input. A group forwarded to other hosts: NAME:vxlan=ADDR[:PORT],...; out of local interfaces: NAME:port=IFACE,... (docs/scale-out.md).",
            transform: GroupArgument.parse)
    var pipes: [GroupArgument] = []

    @Option(name: [.customShort("o"), .customLong("stats-interval")], help: "Print JSON stats lines every SECS seconds (a final set is always printed).", transform: Arguments.seconds)
    var statsInterval: Double = 0

    @Option(name: [.customShort("w"), .customLong("wait")], help: "Wait up to SECS seconds for every ring to have a consumer before reading the input.",
            transform: Arguments.seconds)
    var wait: Double = 10

    @Option(help: "strip: deliver the inner packet (default); keep: deliver the original frame, hashed on the inner flow.")
    var decap: DecapMode = .strip

    @Option(help: "Hash on the 5-tuple (5), addresses and protocol (3), or addresses only (2).")
    var hash: HashTuple = .five

    @Flag(help: "Put the outermost VLAN id into the hash.")
    var hashVlan = false

    @Flag(help: "Put the innermost VNI / GRE key / GTP TEID into the hash.")
    var hashVni = false

    @Option(help: "Hash seed (all lb instances with the same seed and options agree on flow placement).")
    var seed: UInt64?

    @Option(help: "Another UDP port that carries a tunnel, KIND:PORT (vxlan, geneve, gtpu, teredo, ayiya, gre); repeatable.",
            transform: Arguments.tunnelPort)
    var tunnelPort: [TunnelPort] = []

    @Flag(help: "Do not use the standard tunnel ports (vxlan:4789 geneve:6081 gtpu:2152 teredo:3544 ayiya:5072 gre:4754).")
    var noDefaultTunnelPorts = false

    @Option(help: "Remove at most N nested tunnels (0 to 32).", transform: Arguments.integer(in: 0...32))
    var maxDepth: Int = 8

    @Option(help: "Descriptors per ring (a power of two).")
    var ringSlots: Int = RingGeometry.default.slots

    @Option(help: "Packet bytes per ring (a power of two; k, M, G suffixes).", transform: Arguments.size)
    var ringSize: Int = 16 << 20

    @Option(help: "Longest packet a ring stores; longer ones are truncated and counted (default 65535, less when --ring-size cannot hold two such packets).")
    var slotSize: Int?

    @Option(help: "Directory of the control sockets (default: $LB_RUN_DIR, /run/lb for root, else $XDG_RUNTIME_DIR/lb).")
    var runDir: String?

    @Option(help: "Capture replay: stop waiting for a consumer that makes no progress for SECS seconds (its packets are then dropped and counted).",
            transform: Arguments.positiveSeconds)
    var stallTimeout: Double = 30

    @Option(help: "Capture replay: after the end, wait up to SECS seconds for consumers to read everything.", transform: Arguments.seconds)
    var drainTimeout: Double = 60

    @Option(help: "Capture replay: packets per second (0: as fast as the consumers read).")
    var replayRate: UInt64 = 0

    @Option(help: "Seconds (of packet time) to keep fragments that wait for the rest of their datagram.", transform: Arguments.positiveSeconds)
    var fragTimeout: Double = 2

    @Option(name: [.customShort("b"), .long], help: "Frames taken from the input at a time (1 to 1024).", transform: Arguments.integer(in: 1...1024))
    var batch: Int = 64

    @Option(help: "Failover: SECS after a consumer detaches or stops consuming (packets waiting, none released), move its ring's buckets to the group's live rings; they move back when it returns. 'off' disables. Default: 5 for live input, off for a capture replay.",
            transform: Arguments.failover)
    var failover: FailoverMode = .auto

    @Option(help: "Serve Prometheus metrics on ADDR:PORT (e.g. 127.0.0.1:9917, [::1]:9917; port 0 picks a free one).",
            transform: Arguments.listenAddress)
    var metrics: String?

    @Option(help: "Take shunt requests in dumbno's JSON on UDP [ADDR:]PORT (127.0.0.1 unless given; dumbno uses 9000).")
    var shuntUdp: String?

    @Option(help: "The groups --shunt-udp requests shunt (comma-separated; required with --shunt-udp).")
    var shuntUdpGroups: [String] = []

    @Option(help: "Senders besides loopback whose --shunt-udp requests are taken (comma-separated addresses).")
    var shuntUdpAllow: [String] = []

    @Option(help: "A --shunt-udp shunt ends after this many seconds without a shunted packet (dumbno: 30 to 60).",
            transform: Arguments.positiveSeconds)
    var shuntUdpIdle: Double = 60

    @Option(help: ArgumentHelp("Drop a packet equal to one seen less than WINDOW earlier, in packet time (on = 1ms; 500us, 2ms, 0.002 seconds; equal: the innermost IP packet, TTL, checksum and hop limit aside). Off unless given.",
                               valueName: "window"), transform: Arguments.dedupWindow)
    var dedup: UInt64?

    @Option(help: "The group whose members may attach to the rings (control sockets 0660 and ring memory 0640 of this group; run directory 0750).")
    var ringGroup: String?
    @Option(help: "udp:: input: the socket receive buffer to ask for (k, M, G suffixes); the kernel may give less (logged, and in the stats).",
            transform: Arguments.size)
    var rcvbuf: Int = 64 << 20

    @Flag(help: "udp:: input: share the port with other lb processes (SO_REUSEPORT); the kernel spreads datagrams over them by the outer header.")
    var reuseport = false

    @Option(help: "udp:: input: how many VNIs (most packets first) the stats list.", transform: Arguments.integer(in: 0...4096))
    var vniTop: Int = 10

    @Option(help: "AF_XDP: send only matching traffic to lb, the rest to the kernel, e.g. 'udp dst port 4789' (terms: tcp, udp, proto N, dst port N, joined by 'or').",
            transform: Arguments.divert)
    var divert: DivertFilter?

    @Option(help: "AF_XDP: attach lb's XDP program in native (driver) mode, generic (SKB) mode, or auto (native, else generic).")
    var xdpMode: XDPMode = .auto

    @Option(help: "AF_XDP: RX queues to serve, e.g. 0,1 (default: all; also IFACE@Q).", transform: Arguments.numbers)
    var queues: [Int]?

    @Option(help: "Pin the dispatch threads (one per RX queue) to these CPUs, e.g. 2,3.", transform: Arguments.numbers)
    var cpus: [Int]?

    @Option(help: "AF_XDP: UMEM frames of 2 KiB per RX queue, a power of two from 1024 to 1048576; the RX ring holds half of them (default 16384: 32 MiB per queue, 8192 packets of buffering).",
            transform: Arguments.xdpFrames)
    var xdpFrames: UInt32?

    @Option(help: "AF_XDP: have the kernel run the interface's NAPI from a USEC µs timer while traffic flows (sysfs gro_flush_timeout and napi_defer_hard_irqs, restored at exit); 0 leaves the interface's settings alone. At most 100000.",
            transform: { UInt32(try Arguments.integer(in: 0...100_000)($0)) })
    var napiDefer: UInt32?

    @Option(help: "lb's compiled XDP program (default: $LB_XDP_OBJECT, then beside the executable, then /usr/local/lib/lb/lb_xdp.o).")
    var xdpObject: String?

    @Option(help: "After setting up the sockets, the XDP program and the rings, run as this user.")
    var user: String?

    @Option(help: "Read options from a YAML file whose keys are these long options (docs/configuration.md); options given here too follow the file's. lb check-config FILE checks one.")
    var config: String?

    // Per-group policy (docs/policy.md; PolicyOptions.swift)
    @Option(help: "GROUP=EXPR: the group receives only packets that match EXPR (tcpdump's language), applied after decapsulation; repeatable, one per group.")
    var filter: [String] = []
    @Option(help: "GROUP=N: the group receives the first N bytes of each packet (14 to 65535; the wire length stays); repeatable.")
    var slice: [String] = []
    @Option(help: "Tag each decapsulated packet with an 802.1Q tag naming its tenant: vni (the innermost VNI, GRE key, ERSPAN session or TEID) or vlan (the outer VLAN).")
    var tenantTag: TenantTag.Source?
    @Option(help: "With --tenant-tag vni: ID=VLAN[,ID=VLAN...], the VLAN id for tunnel ids that are not VLAN ids (0, above 4094) or should be another; repeatable.")
    var tenantMap: [String] = []

    // Forwarded groups (docs/scale-out.md; ForwardOptions.swift)
    @Option(help: "GROUP=VNI: the VNI of a vxlan= group's VXLAN headers (default: the group's position, from 1); GROUP=packet: each packet's own innermost tunnel id where it has one that fits 24 bits; repeatable.")
    var forwardVni: [String] = []
    @Flag(help: "vxlan= members are not asked whether they are there (for receivers that are not lb: Zeek's udp:: source); they count as always up.")
    var noForwardKeepalive = false
    @Option(help: "How port= members send: auto (AF_XDP TX where the interface takes an AF_XDP socket, else AF_PACKET), af_xdp or af_packet.")
    var forwardPortTx: PortTX = .auto

    func makeConfig() throws -> BrokerConfig {
        switch input {
        case .pcapFile(let path, _):
            if queues != nil { throw ValidationError("--queues is for af_xdp inputs") }
            return try makeConfig(.pcapFile(path: path, rate: replayRate), defaultName: defaultGroupName(for: path))
        case .afXDP(let iface, let q):
            return try makeConfig(.afXDP(interface: iface, queues: q ?? queues), defaultName: defaultGroupName(for: iface))
        case .afPacket(let iface):
            if queues != nil { throw ValidationError("-i af_packet:IFACE reads all queues with one socket: no --queues") }
            return try makeConfig(input, defaultName: defaultGroupName(for: iface))
        case .udp(let spec, _): return try makeUDPConfig(spec)
        }
    }

    /// `-i udp::...`: the listening port carries the chosen tunnel in the decoder's port table.
    func makeUDPConfig(_ spec: DatagramSpec) throws -> BrokerConfig {
        var options = UDPOptions()
        options.rcvbuf = rcvbuf
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
        var groups = pipes.map { $0.resolved(defaultName: defaultName) }
        if groups.isEmpty { groups = [GroupSpec(name: defaultName, count: 2)] }
        var config = BrokerConfig(input: spec, groups: groups)
        config.live = liveOptions()
        switch spec {
        case .afXDP, .afPacket: break
        default:
            if divert != nil || cpus != nil || xdpObject != nil || xdpMode != .auto || xdpFrames != nil || napiDefer != nil {
                throw ValidationError("--divert, --cpus, --xdp-mode, --xdp-frames, --napi-defer and --xdp-object are for live interfaces (af_xdp:IFACE, af_packet:IFACE)")
            }
        }
        config.user = user
        // unless told, the slot is as large as a ring of this size holds twice (a record is a
        // 64-byte cache line of tunnel info and the packet rounded up to 64)
        let slot = slotSize ?? max(64, min(RingGeometry.default.maxCaplen, ringSize / 2 - 128))
        config.geometry = RingGeometry(slots: ringSlots, dataBytes: ringSize, maxCaplen: slot, lanes: 1)
        var ports = noDefaultTunnelPorts ? [] : DecodeConfig.defaultTunnelPorts
        for p in tunnelPort {
            ports.removeAll { $0.port == p.port }
            ports.append(p)
        }
        guard ports.count <= TunnelPortTable.capacity else {
            throw ValidationError("--tunnel-port: at most \(TunnelPortTable.capacity) tunnel ports in all (the \(DecodeConfig.defaultTunnelPorts.count) standard ones count unless --no-default-tunnel-ports)")
        }
        config.dispatch.decode = DecodeConfig(tunnelPorts: ports, maxDepth: maxDepth, keepEncapsulation: decap == .keep,
                                              tuple: TupleMode(rawValue: UInt8(hash.rawValue))!, hashVLAN: hashVlan, hashVNI: hashVni,
                                              seeds: seed.map { HashSeeds(seed: $0) } ?? .standard)
        config.dispatch.stallTimeoutNanos = UInt64(stallTimeout * 1e9)
        config.dispatch.fragments.timeoutNanos = UInt64(fragTimeout * 1e9)
        config.dispatch.batch = batch
        config.runDir = runDir
        config.statsInterval = statsInterval
        config.waitForConsumers = wait
        config.drainTimeout = drainTimeout
        config.failover = failover
        config.metricsAddress = metrics
        config.shuntUDP = shuntUdp
        config.shuntUDPGroups = shuntUdpGroups.flatMap { $0.split(separator: ",").map(String.init) }
        config.shuntUDPAllow = shuntUdpAllow.flatMap { $0.split(separator: ",").map(String.init) }
        config.shuntUDPIdle = shuntUdpIdle
        config.ringGroup = ringGroup
        config.dispatch.policies = try policies(groups: groups)
        config.dispatch.tenantTag = try tenant()
        config.dispatch.forwardedGroups = Set(pipes.indices.filter { pipes[$0].members != nil })
        config.dedupWindowNanos = dedup ?? 0
        return config
    }

    func run() throws {
        var config = try makeConfig()
        try startForwarders(&config)
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
    func liveOptions() -> LiveOptions {
        var o = LiveOptions()
        o.xdpMode = xdpMode
        o.divert = divert
        if let cpus { o.cpus = cpus }
        o.xdpObject = xdpObject
        if let xdpFrames { o.frames = xdpFrames }
        if let napiDefer { o.napiDeferMicros = napiDefer }
        return o
    }
}
