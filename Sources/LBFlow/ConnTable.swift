// The connection table: finds or creates the connection of each packet, runs Zeek's per-protocol
// logic on it, and hands finished connections to the caller as `ConnRecord`s.
//
// Timers (inactivity, TCP attempt, close and expire timers) are evaluated lazily: a connection
// is checked when its next packet arrives (exact: only its own packets change its state) and
// by a sweep every `sweepInterval` of packet time (for logging idle connections).

/// Zeek's timeouts and limits (its defaults).
public struct FlowConfig: Sendable {
    public var tcpInactivity: UInt64 = 300_000_000_000
    public var udpInactivity: UInt64 = 60_000_000_000
    public var icmpInactivity: UInt64 = 60_000_000_000
    /// unknown_ip_inactivity_timeout
    public var unknownInactivity: UInt64 = 60_000_000_000
    /// dns_session_timeout: with the DNS scripts loaded, Zeek's DNS analyzer (attached to UDP
    /// connections to its ports) removes a session idle this long (less its 1 s allowance)
    public var dnsSessionTimeout: UInt64 = 10_000_000_000
    /// `lb flowlog --shunt-after`: ask lb to shunt a TCP or UDP connection once it has carried
    /// this many payload bytes (0: never)
    public var shuntAfter: UInt64 = 0
    /// the ports base/protocols/dns registers the analyzer for (UDP)
    public static let dnsPorts: Set<UInt16> = [53, 137, 5353, 5355]
    public var tcpAttemptDelay: UInt64 = 5_000_000_000
    public var tcpCloseDelay: UInt64 = 5_000_000_000
    public var tcpSYNTimeout: UInt64 = 5_000_000_000
    public var tcpSessionTimer: UInt64 = 6_000_000_000
    public var tcpConnectionLinger: UInt64 = 5_000_000_000
    public var tcpMaxInitialWindow: UInt64 = 16384
    public var tcpMaxAboveHoleWithoutAnyAcks: UInt64 = 16384
    public var tcpExcessiveDataWithoutFurtherAcks: UInt64 = 10 * 1024 * 1024
    public var ignoreChecksums = false
    /// connections tracked at most; beyond it the least recently swept are flushed early
    public var maxConnections = 1 << 20
    public var sweepInterval: UInt64 = 10_000_000_000
    public var likelyServerPorts = LikelyServerPorts.standard
    /// base/protocols/conn/inactivity.zeek: longer inactivity timeouts by service port
    public var portInactivityTimeouts: [UInt16: UInt64] = [21: 3_600_000_000_000, 22: 3_600_000_000_000,
                                                           23: 3_600_000_000_000, 513: 3_600_000_000_000]
    public init() {}
}

/// Packets and drops, for the report and the stats.
public struct FlowStats: Sendable {
    public var packets: UInt64 = 0
    public var tracked: UInt64 = 0
    public var notIP: UInt64 = 0
    public var truncated: UInt64 = 0
    public var badHeader: UInt64 = 0
    public var badIPChecksum: UInt64 = 0
    /// IP fragments (each is held until its datagram is complete)
    public var fragments: UInt64 = 0
    /// datagrams rebuilt from fragments and tracked as one packet (not in `tracked`)
    public var reassembled: UInt64 = 0
    /// rebuilt datagrams whose headers did not parse
    public var reassembledUnusable: UInt64 = 0
    /// fragments dropped: their datagram timed out or was evicted
    public var fragmentsDropped: UInt64 = 0
    public var otherProtocol: UInt64 = 0
    /// connections shunted (`--shunt-after`), lb's end reports applied, and reports for a
    /// connection no longer in the table
    public var shunted: UInt64 = 0
    public var shuntReports: UInt64 = 0
    public var shuntReportsUnmatched: UInt64 = 0
    public var tableFull: UInt64 = 0
    public var connections: UInt64 = 0
    public init() {}
}

/// Zeek's capture-loss counters: acks that advanced a stream, and those that revealed a gap.
public struct LossCounters: Sendable, Equatable {
    public var acks: UInt64 = 0
    public var gaps: UInt64 = 0
    public init() {}
}

/// Zeek's likely_server_ports: the ports its loaded protocol scripts register, used to orient
/// connections whose first packet is not a SYN. Which ports are in it depends on the scripts
/// Zeek loads; `standard` is Zeek's default script set.
public struct LikelyServerPorts: Sendable {
    public var tcp: Set<UInt16>
    public var udp: Set<UInt16>
    /// the protocol scripts named (all of them for `standard`): some shape conn.log beyond the
    /// ports (the DNS analyzer's session timeout)
    public var services: Set<String> = []
    public init(tcp: Set<UInt16> = [], udp: Set<UInt16> = []) { self.tcp = tcp; self.udp = udp }

    /// The server ports each of Zeek's base protocol and packet-protocol scripts registers
    /// (`Analyzer::register_for_ports` / `PacketAnalyzer::register_for_ports` add their second
    /// argument to likely_server_ports, not the client ports after it).
    public static let byService: [String: (tcp: [UInt16], udp: [UInt16])] = [
        "http": ([80, 81, 631, 1080, 3128, 8000, 8080, 8888], []),
        "ssl": ([443, 465, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223], []),
        "dtls": ([], [443]),
        "quic": ([], [443]),
        "dns": ([53], [53, 137, 5353, 5355]),
        "ftp": ([21, 2811], []),
        "ssh": ([22], []),
        "finger": ([79], []),
        "mqtt": ([1883], []),
        "smtp": ([25, 587], []),
        "pop3": ([], []),            // DPD signatures only, no ports
        "imap": ([143], []),
        "irc": ([6666, 6667, 6668, 6669], []),
        "dhcp": ([], [67, 4011]),     // 68/udp is registered as a client port
        "ntp": ([], [123]),
        "snmp": ([], [161, 162]),
        "syslog": ([514], [514]),
        "sip": ([], [5060]),
        "radius": ([], [1812]),
        "krb": ([88], [88]),
        "krb_tcp": ([88], []),
        "modbus": ([502], []),
        "mysql": ([1434, 3306], []),
        "rdp": ([3389], []),
        "rdpeudp": ([], [3389]),
        "smb": ([139, 445], []),
        "dce_rpc": ([135], []),
        "dnp3": ([20000], [20000]),
        "dnp3_tcp": ([20000], []),
        "xmpp": ([5222, 5269], []),
        "socks": ([1080], []),
        "ldap": ([389, 3268], [389]),
        "ldap_tcp": ([389, 3268], []),
        "redis": ([6379], []),
        "postgresql": ([5432], []),
        "vxlan": ([], [4789]),
        "geneve": ([], [6081]),
        "teredo": ([], [3544]),
        "ayiya": ([], [5072]),
        "gtpv1": ([], [2152, 2123]),
        "gre": ([], [4754]),
    ]

    /// The ports of the given services (names as in conn.log's service column).
    public static func services<S: Sequence>(_ names: S) -> LikelyServerPorts where S.Element == String {
        var r = LikelyServerPorts()
        for n in names {
            guard let p = byService[n.lowercased()] else { continue }
            r.services.insert(n.lowercased())
            r.tcp.formUnion(p.tcp)
            r.udp.formUnion(p.udp)
        }
        return r
    }

    /// Parses "standard", "none", or a comma-separated list of service names (http, dns, ...)
    /// and ports (80/tcp, 53/udp).
    public init(parsing text: String) throws(LogError) {
        self = Self.packetAnalysis
        if text == "standard" { self = .standard; return }
        if text == "none" || text.isEmpty { return }
        for item in text.split(separator: ",") {
            let s = String(item)
            if let slash = s.firstIndex(of: "/") {
                guard let port = UInt16(s[..<slash]) else { throw LogError("bad port '\(s)'") }
                switch s[s.index(after: slash)...] {
                case "tcp": tcp.insert(port)
                case "udp": udp.insert(port)
                default: throw LogError("bad port '\(s)' (PORT/tcp or PORT/udp)")
                }
            } else if let p = Self.byService[s.lowercased()] {
                services.insert(s.lowercased())
                tcp.formUnion(p.tcp)
                udp.formUnion(p.udp)
            } else {
                throw LogError("unknown service '\(s)' (known: \(Self.byService.keys.sorted().joined(separator: ", ")))")
            }
        }
    }

    /// The tunnel ports Zeek's packet analysis registers (base/packet-protocols, loaded even by
    /// `zeek -b`): always likely server ports, whatever protocol scripts are loaded.
    public static let packetAnalysis = services(["vxlan", "geneve", "gre", "teredo", "ayiya", "gtpv1"])

    /// Zeek's default script set (every base protocol script loaded).
    public static let standard = services(byService.keys)
}

/// The connection records in one growable allocation, so that a packet's record is updated in
/// place. Conn holds no references, so records are moved with plain memory copies.
final class ConnStore {
    private(set) var base: UnsafeMutablePointer<Conn>
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int) {
        base = .allocate(capacity: capacity)
        self.capacity = capacity
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    var indices: Range<Int> { 0..<count }

    func append(_ c: Conn) {
        if count == capacity {
            let n = capacity * 2
            let grown = UnsafeMutablePointer<Conn>.allocate(capacity: n)
            grown.moveInitialize(from: base, count: count)
            base.deallocate()
            base = grown
            capacity = n
        }
        (base + count).initialize(to: c)
        count += 1
    }

    subscript(i: Int) -> Conn {
        get { base[i] }
        set { base[i] = newValue }
    }
}

public struct ConnTable {
    public let config: FlowConfig
    var index: [ConnKey: Int32] = [:]
    /// the records, worked on in place (a class: a copy of a ConnTable shares them, so treat a
    /// ConnTable as a single owner)
    let conns = ConnStore(capacity: 4096)
    var live: ContiguousArray<Bool> = []
    var free: [Int32] = []
    var uids: UIDGenerator
    var lastSweep: UInt64 = 0
    public var now: UInt64 = 0
    public var stats = FlowStats()
    public var loss = LossCounters()
    /// Finished connections, oldest first; the caller drains it (`removeAll(keepingCapacity:)`).
    public var finished: [ConnRecord] = []
    var packet = FlowPacket()
    let fragmentTable = FragmentReassembler()

    public init(config: FlowConfig = FlowConfig(), seed: UInt64) {
        self.config = config
        uids = UIDGenerator(seed: seed)
        index.reserveCapacity(4096)
        live.reserveCapacity(4096)
        finished.reserveCapacity(1024)
    }

    public var count: Int { index.count }

    /// Bytes of one connection's record in the table (the index entry comes on top).
    public static var connectionRecordBytes: Int { MemoryLayout<Conn>.stride }

    /// Processes one packet: `bytes` from its first byte, `l3` the IP header's offset.
    /// `tunnel` names the outer flow lb removed (for tunnel_parents), if any.
    /// `cutToSlot`: lb had more of the packet than it stored (`LB_F_TRUNCATED`, a packet longer
    /// than the ring's slot size): the capture Zeek reads holds it whole, so its payload counts
    /// as captured.
    public mutating func process(_ bytes: UnsafeRawBufferPointer, l3: Int, wireLength: Int, ts nanos: UInt64,
                                 tunnel: UID? = nil, vlan: UInt16? = nil, cutToSlot: Bool = false) {
        // Zeek reads packets through libpcap at microsecond precision (a nanosecond capture's
        // times are truncated), and so must its times and durations here
        let ts = nanos / 1000 &* 1000
        stats.packets &+= 1
        if ts > now { now = ts }
        analyse(bytes, l3: l3, wireLength: wireLength, ts: ts, tunnel: tunnel, vlan: vlan, reassembled: false,
                cutToSlot: cutToSlot)
    }

    /// set by `process` when a connection crossed `shuntAfter`: the caller asks lb to shunt
    /// the flow of the packet just processed (with `shuntIdleNanos` as the idle timeout)
    public var shuntRequested = false
    public private(set) var shuntIdleNanos: UInt64 = 0
    /// the connection of the last request (for `cancelShunt`)
    public private(set) var shuntSlot: Int32 = -1

    /// DNS session timers by time (`fireDNSTimers`)
    var dnsTimers = TimerHeap()

    mutating func analyse(_ bytes: UnsafeRawBufferPointer, l3: Int, wireLength: Int, ts: UInt64,
                          tunnel: UID?, vlan: UInt16?, reassembled: Bool, cutToSlot: Bool = false) {
        let problem = PacketParser.parse(bytes, l3: l3, wireLength: wireLength, ts: ts,
                                         ignoreChecksums: config.ignoreChecksums, cutToSlot: cutToSlot, into: &packet)
        if reassembled && problem != .none { stats.reassembledUnusable &+= 1; return }
        switch problem {
        case .none: break
        case .notIP: stats.notIP &+= 1; return
        case .truncatedIP, .truncatedTransport: stats.truncated &+= 1; return
        case .badIPHeader, .badTCPHeader: stats.badHeader &+= 1; return
        case .badIPChecksum: stats.badIPChecksum &+= 1; return
        case .fragment:
            stats.fragments &+= 1
            guard !reassembled else { return }
            let before = fragmentTable.dropped
            if let n = fragmentTable.offer(bytes, l3: l3, packet) {
                stats.reassembled &+= 1
                analyse(UnsafeRawBufferPointer(start: fragmentTable.scratch, count: n), l3: 0, wireLength: n, ts: ts,
                        tunnel: tunnel, vlan: vlan, reassembled: true)
            }
            stats.fragmentsDropped &+= fragmentTable.dropped &- before
            return
        case .otherProtocol: stats.otherProtocol &+= 1; return
        }
        let p = packet
        if let next = dnsTimers.first, ts >= next.at { fireDNSTimers(now: ts) }
        if now &- lastSweep >= config.sweepInterval {
            sweep(now: now)
            lastSweep = now
        }
        handle(p, bytes, tunnel: tunnel, vlan: vlan, reassembled: reassembled)
    }

    // MARK: Lookup

    mutating func handle(_ p: FlowPacket, _ bytes: UnsafeRawBufferPointer, tunnel: UID?, vlan: UInt16?, reassembled: Bool) {
        var sport = p.sport, dport = p.dport
        var oneWay = false
        let proto = p.proto
        if proto == 1 || proto == 58 {
            sport = UInt16(p.icmpType)
            let c = proto == 1 ? Self.icmp4Counterpart(p.icmpType, p.icmpCode) : Self.icmp6Counterpart(p.icmpType, p.icmpCode)
            dport = c.port
            oneWay = c.oneWay
        }
        let key = ConnKey(src: p.src, sport: sport, dst: p.dst, dport: dport, proto: proto, oneWay: oneWay)
        var slot = index[key]
        if let s = slot {
            let c = conns[Int(s)]
            if expired(c, at: p.ts) || (c.transport == .tcp && isReuse(c, p)) {
                remove(Int(s))
                slot = nil
            }
        }
        let i: Int
        if let s = slot {
            i = Int(s)
        } else {
            guard index.count < config.maxConnections else { if !reassembled { stats.tableFull &+= 1 }; return }   // a counted drop
            i = newConn(p, key: key, sport: sport, dport: dport)
        }
        work(&conns.base[i], p, fresh: slot == nil, sport: sport, tunnel: tunnel, vlan: vlan, reassembled: reassembled)
    }

    mutating func work(_ c: inout Conn, _ p: FlowPacket, fresh: Bool, sport: UInt16, tunnel: UID?, vlan: UInt16?, reassembled: Bool) {
        if fresh {
            c.lastTunnel = tunnel
        } else if tunnel != c.lastTunnel {
            // Connection::CheckEncapsulation: the encapsulation changed; past
            // Tunnel::max_changes_per_connection (5) changes the analysis is partial ('X')
            c.tunnelChanges &+= 1
            if c.tunnelChanges > 5 { _ = c.checkHistory(0x4000, UInt8(ascii: "X"), isOrig: true) }
            c.lastTunnel = tunnel
        }
        if let tunnel {
            if c.tunnel0 == nil { c.tunnel0 = tunnel } else if c.tunnel0 != tunnel && c.tunnel1 == nil { c.tunnel1 = tunnel }
        }
        if c.vlan == nil, let vlan { c.vlan = vlan }
        let isOrig = p.src == c.origH && sport == c.origP
        if !p.tcpHeaderUsable {                   // bad_TCP_header_len / truncated_header
            if !reassembled { stats.badHeader &+= 1 }
            return
        }
        if !reassembled { stats.tracked &+= 1 }
        switch c.transport {
        case .tcp: tcp(&c, p, isOrig: isOrig)
        case .udp: udp(&c, p, isOrig: isOrig)
        case .icmp: icmp(&c, p, isOrig: isOrig)
        case .unknown: unknownTransport(&c, p, isOrig: isOrig)
        }
        if config.shuntAfter > 0 && !c.shunted && (c.transport == .tcp || c.transport == .udp) {
            c.payloadSeen &+= UInt64(max(0, p.payloadLength))
            if c.payloadSeen >= config.shuntAfter { startShunt(&c) }
        }
    }

    // MARK: Shunting (lb flowlog --shunt-after)

    /// The connection is to be shunted: lb will send only its SYN, FIN and RST from now on,
    /// and report what it stopped when the shunt ends. Until then the connection neither
    /// expires nor counts the data it does not see as content gaps (Zeek's
    /// skip_further_processing does the same to the reassembler).
    mutating func startShunt(_ c: inout Conn) {
        c.shunted = true
        c.orig.skipDeliveries = true
        c.resp.skipDeliveries = true
        shuntRequested = true
        shuntIdleNanos = c.inactivityTimeout
        shuntSlot = index[c.key] ?? -1
        stats.shunted &+= 1
    }

    /// lb refused the shunt: the connection expires again as usual (it keeps not counting
    /// content gaps, since data may already be missing).
    public mutating func cancelShunt(slot: Int32) {
        guard slot >= 0, Int(slot) < conns.count, live[Int(slot)] else { return }
        conns.base[Int(slot)].shunted = false
        stats.shunted &-= 1
    }

    /// lb's end report for a shunted flow (one per data-path thread): its packets and IP bytes
    /// join the connection's counts, and its time the connection's last time while either side
    /// is open (Zeek moves the last time only then).
    public mutating func applyShuntEnd(a: IPAddr, aPort: UInt16, b: IPAddr, bPort: UInt16, proto: UInt8,
                                       packetsAB: UInt64, ipBytesAB: UInt64, packetsBA: UInt64, ipBytesBA: UInt64, lastNanos: UInt64) {
        let key = ConnKey(src: a, sport: aPort, dst: b, dport: bPort, proto: proto, oneWay: false)
        guard let s = index[key] else { stats.shuntReportsUnmatched &+= 1; return }
        let i = Int(s)
        var c = conns[i]
        let aIsOrig = c.origH == a && c.origP == aPort
        c.orig.packets &+= aIsOrig ? packetsAB : packetsBA
        c.orig.ipBytes &+= aIsOrig ? ipBytesAB : ipBytesBA
        c.resp.packets &+= aIsOrig ? packetsBA : packetsAB
        c.resp.ipBytes &+= aIsOrig ? ipBytesBA : ipBytesAB
        let last = lastNanos / 1000 &* 1000
        if !(c.orig.didClose && c.resp.didClose) && last > c.last { c.last = last }
        c.shunted = false
        conns[i] = c
        stats.shuntReports &+= 1
    }

    mutating func newConn(_ p: FlowPacket, key: ConnKey, sport: UInt16, dport: UInt16) -> Int {
        let transport: Transport
        switch p.proto {
        case 6: transport = .tcp
        case 17: transport = .udp
        case 1, 58: transport = .icmp
        default: transport = .unknown
        }
        var flip = false
        switch transport {
        case .tcp:
            let f = p.flags
            if f & TCPFlag.syn == 0 || f & TCPFlag.ack != 0 {
                if config.likelyServerPorts.tcp.contains(sport) {
                    if config.likelyServerPorts.tcp.contains(dport) {
                        flip = f & TCPFlag.syn == 0 && sport < dport
                    } else {
                        flip = true
                    }
                }
            }
        case .udp:
            flip = config.likelyServerPorts.udp.contains(sport) && !config.likelyServerPorts.udp.contains(dport)
        case .icmp, .unknown:
            flip = false
        }
        let timeout = transport == .icmp ? config.icmpInactivity : transport == .unknown ? config.unknownInactivity : config.udpInactivity
        var c = Conn(key: key, transport: transport, ipProto: p.proto, origH: p.src, respH: p.dst,
                     origP: sport, respP: dport, start: p.ts, last: p.ts, uid: uids.next(),
                     orig: Endpoint(isOrig: true), resp: Endpoint(isOrig: false), inactivityTimeout: timeout)
        if transport == .tcp { c.expireBase = p.ts &+ config.tcpSYNTimeout }
        if flip && !p.dst.isBroadcast { c.flipRoles() }
        stats.connections &+= 1
        let i: Int
        if let f = free.popLast() {
            i = Int(f)
            conns[i] = c
            live[i] = true
        } else {
            i = conns.count
            conns.append(c)
            live.append(true)
        }
        index[key] = Int32(i)
        // DNS_Analyzer's constructor schedules ExpireTimer at start + dns_session_timeout
        if transport == .udp && config.likelyServerPorts.services.contains("dns")
            && FlowConfig.dnsPorts.contains(conns[i].respP) {
            conns.base[i].dnsTimerAt = p.ts &+ config.dnsSessionTimeout
            dnsTimers.push(DNSTimer(at: conns[i].dnsTimerAt, slot: Int32(i), uid: conns[i].uid))
        }
        return i
    }

    /// DNS_Analyzer::ExpireTimer, for every timer due by `now` (the time of the packet that
    /// moved network time past it): a session idle for dns_session_timeout less 1 s is removed
    /// (logged); else the timer is set again dns_session_timeout from now.
    mutating func fireDNSTimers(now: UInt64) {
        while let t = dnsTimers.first, t.at <= now {
            dnsTimers.pop()
            let i = Int(t.slot)
            guard live[i], conns[i].uid == t.uid, conns[i].dnsTimerAt == t.at else { continue }
            if now &- conns[i].last >= config.dnsSessionTimeout &- 1_000_000_000 {
                remove(i)
            } else {
                conns.base[i].dnsTimerAt = now &+ config.dnsSessionTimeout
                dnsTimers.push(DNSTimer(at: conns[i].dnsTimerAt, slot: t.slot, uid: t.uid))
            }
        }
    }

    mutating func remove(_ i: Int) {
        let c = conns[i]
        finished.append(c.record())
        index.removeValue(forKey: c.key)
        live[i] = false
        free.append(Int32(i))
    }

    /// Logs and forgets every connection (end of stream).
    public mutating func flushAll() {
        for i in conns.indices where live[i] { remove(i) }
    }

    /// Logs connections whose timers have expired by `now`.
    public mutating func sweep(now: UInt64) {
        for i in conns.indices where live[i] && expired(conns[i], at: now) { remove(i) }
    }

    // MARK: Timers

    /// Whether one of Zeek's timers would have removed `c` by time `t`.
    func expired(_ c: Conn, at t: UInt64) -> Bool {
        if c.shunted { return false }          // until lb's end report (its counts complete the record)
        if c.inactivityTimeout > 0 && t >= c.last &+ c.inactivityTimeout { return true }
        guard c.transport == .tcp else { return false }
        if c.deleteAt != 0 && t >= c.deleteAt { return true }
        if c.attemptAt != 0 && t >= c.attemptAt && c.isActive
            && (c.orig.state == .synSent || c.orig.state == .synAckSent) && c.resp.state == .inactive {
            return true
        }
        if c.isActive {
            let o = c.orig, r = c.resp
            let closedEnough = (o.didClose || r.didClose)
                && ((o.didClose && r.didClose) || o.state == .reset || r.state == .reset
                    || o.state == .inactive || r.state == .inactive)
            let never = o.state == .inactive && r.state == .inactive
            if closedEnough || never {
                // the expire timer fires at base, base+6s, ...; it removes the connection at the
                // first firing later than last + linger
                let threshold = c.last &+ config.tcpConnectionLinger
                if c.expireBase != 0 && t >= firing(c.expireBase, after: threshold) { return true }
                if c.expireBase2 != 0 && t >= firing(c.expireBase2, after: threshold) { return true }
            }
        }
        return false
    }

    /// The first time of base, base + tcp_session_timer, ... later than `threshold`.
    func firing(_ base: UInt64, after threshold: UInt64) -> UInt64 {
        guard base <= threshold else { return base }
        let k = (threshold - base) / config.tcpSessionTimer + 1
        return base &+ k &* config.tcpSessionTimer
    }

    // MARK: ICMP

    static func icmp4Counterpart(_ type: UInt8, _ code: UInt8) -> (port: UInt16, oneWay: Bool) {
        switch type {
        case 8: return (0, false)
        case 0: return (8, false)
        case 13: return (14, false)
        case 14: return (13, false)
        case 15: return (16, false)
        case 16: return (15, false)
        case 10: return (9, false)
        case 9: return (10, false)
        case 17: return (18, false)
        case 18: return (17, false)
        default: return (UInt16(code), true)
        }
    }

    static func icmp6Counterpart(_ type: UInt8, _ code: UInt8) -> (port: UInt16, oneWay: Bool) {
        switch type {
        case 128: return (129, false)
        case 129: return (128, false)
        case 133: return (134, false)
        case 134: return (133, false)
        case 135: return (136, false)
        case 136: return (135, false)
        case 130: return (131, false)
        case 131: return (130, false)
        case 139: return (140, false)
        case 140: return (139, false)
        case 144: return (145, false)
        case 145: return (144, false)
        default: return (UInt16(code), true)
        }
    }

    mutating func icmp(_ c: inout Conn, _ p: FlowPacket, isOrig: Bool) {
        guard p.checksumOK else { return }       // Zeek drops it before counting (bad_ICMP_checksum)
        c.last = p.ts
        let len = Int64(p.payloadLength)
        if isOrig {
            c.orig.dgramBytes = c.orig.dgramBytes < 0 ? len : c.orig.dgramBytes + len
            c.orig.packets &+= 1; c.orig.ipBytes &+= UInt64(p.ipLength)
        } else {
            c.resp.dgramBytes = c.resp.dgramBytes < 0 ? len : c.resp.dgramBytes + len
            c.resp.packets &+= 1; c.resp.ipBytes &+= UInt64(p.ipLength)
        }
    }

    /// Whether a protocol analyzer Zeek attaches by port flips the connection on this packet:
    /// the DNS analyzer when the first message it sees is a response from the originator (not
    /// to a multicast address), the NTP analyzer once when a server message comes from the
    /// originator or a client message from the responder. Only with those scripts loaded.
    mutating func analyzerFlips(_ c: inout Conn, _ p: FlowPacket, isOrig: Bool) -> Bool {
        let services = config.likelyServerPorts.services
        if c.dnsTimerAt != 0 {                                   // the DNS analyzer is attached
            guard !c.appSeenFirst else { return false }
            guard p.payloadCaptured >= 12, p.payloadLength >= 12 else { return false }
            let opcode = (p.appByte2 >> 3) & 0xF
            // ParseMessage returns before first_message for other opcodes (query 0, notify 4,
            // update 5; NetBIOS on 137 takes any): DNS_unknown_opcode, analysis partial ('X')
            guard opcode == 0 || opcode == 4 || opcode == 5 || c.respP == 137 else {
                _ = c.checkHistory(0x4000, UInt8(ascii: "X"), isOrig: true)
                return false
            }
            c.appSeenFirst = true
            return isOrig && p.appByte2 & 0x80 != 0 && !c.respH.isMulticast
        }
        if c.respP == 123 && services.contains("ntp") && !c.appSeenFirst && p.payloadLength >= 48 && p.payloadCaptured >= 1 {
            let mode = p.appByte0 & 7
            if (mode == 4 && isOrig) || (mode == 3 && !isOrig) {
                c.appSeenFirst = true                             // flipped_: once
                return true
            }
        }
        return false
    }

    // MARK: Other IP protocols

    /// Zeek's UnknownIPTransportAnalyzer: the packet moves the connection's last time, and
    /// the conn-size analyzer counts it; no history, no sizes.
    mutating func unknownTransport(_ c: inout Conn, _ p: FlowPacket, isOrig: Bool) {
        c.last = p.ts
        if isOrig { c.orig.packets &+= 1; c.orig.ipBytes &+= UInt64(p.ipLength) }
        else { c.resp.packets &+= 1; c.resp.ipBytes &+= UInt64(p.ipLength) }
    }

    // MARK: UDP

    mutating func udp(_ c: inout Conn, _ p: FlowPacket, isOrig: Bool) {
        // a bad checksum ends UDPAnalyzer::DeliverPacket before the packet is forwarded to the
        // conn-size analyzer: history 'C' only (zeek btest core.tunnels.vxlan-unknown-internal-
        // packet: history C, 0 packets)
        guard p.checksumOK else {
            var e = isOrig ? c.orig : c.resp
            c.scaled(UInt8(ascii: "C"), &e.chkCount, &e.chkThresh, isOrig: isOrig)
            if isOrig { c.orig = e } else { c.resp = e }
            return
        }
        c.last = p.ts
        // Zeek's order: the UDP history letter (its masks are separate bits per direction), then
        // the protocol analyzers (DNS, NTP), which may flip the connection or mark it 'X'; the
        // length and the conn-size counts stay with the side the packet came from, so after a
        // flip they land on the new originator's side
        _ = c.checkHistory(isOrig ? 0x1 : 0x2, isOrig ? UInt8(ascii: "D") : UInt8(ascii: "d"), isOrig: true)
        if analyzerFlips(&c, p, isOrig: isOrig) { c.flipRoles() }
        let ulen = Int64(p.udpLength) - 8
        if isOrig {
            c.orig.dgramBytes = c.orig.dgramBytes < 0 ? ulen : c.orig.dgramBytes + ulen
            c.orig.packets &+= 1; c.orig.ipBytes &+= UInt64(p.ipLength)
        } else {
            c.resp.dgramBytes = c.resp.dgramBytes < 0 ? ulen : c.resp.dgramBytes + ulen
            c.resp.packets &+= 1; c.resp.ipBytes &+= UInt64(p.ipLength)
        }
    }
}

/// A DNS session timer: when, and the connection (slot and uid, so a reused slot is ignored).
struct DNSTimer {
    var at: UInt64
    var slot: Int32
    var uid: UID
}

/// A binary min-heap of timers by time.
struct TimerHeap {
    var items: [DNSTimer] = []
    var first: DNSTimer? { items.first }

    mutating func push(_ t: DNSTimer) {
        items.append(t)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].at < items[parent].at else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count && items[l].at < items[m].at { m = l }
            if r < items.count && items[r].at < items[m].at { m = r }
            if m == i { return }
            items.swapAt(i, m)
            i = m
        }
    }
}
