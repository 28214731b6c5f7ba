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
    public var fragments: UInt64 = 0
    public var otherProtocol: UInt64 = 0
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

/// The services Zeek's default scripts register, which makes their ports "likely server
/// ports" (likely_server_ports) for orienting connections whose first packet is not a SYN.
public enum LikelyServerPorts {
    public static let tcp: Set<UInt16> = [
        21, 22, 23, 25, 53, 80, 81, 88, 110, 111, 135, 139, 143, 389, 443, 445, 465, 502, 563, 585,
        587, 614, 631, 636, 989, 990, 992, 993, 995, 1080, 1883, 2049, 2811, 3128, 3306, 3389, 5060,
        5222, 5269, 5432, 5672, 6379, 6666, 6667, 6668, 6669, 7000, 8000, 8080, 8443, 8883, 8888,
        1521, 20000, 44818, 4840, 5223, 9090, 992, 6443, 11211, 47808,
    ]
    public static let udp: Set<UInt16> = [
        53, 67, 68, 69, 123, 137, 161, 162, 389, 500, 514, 547, 1812, 1813, 2123, 2152, 3478, 3544,
        4500, 4789, 5060, 5072, 5353, 5355, 6081, 3389, 44818, 2222, 47808, 1194, 1900, 4754, 5246, 5247,
        88, 111, 2049, 20000, 546, 3702, 8472,
    ]
}

public struct ConnTable {
    public let config: FlowConfig
    var index: [ConnKey: Int32] = [:]
    var conns: ContiguousArray<Conn> = []
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

    public init(config: FlowConfig = FlowConfig(), seed: UInt64) {
        self.config = config
        uids = UIDGenerator(seed: seed)
        index.reserveCapacity(4096)
        conns.reserveCapacity(4096)
        live.reserveCapacity(4096)
        finished.reserveCapacity(1024)
    }

    public var count: Int { index.count }

    /// Processes one packet: `bytes` from its first byte, `l3` the IP header's offset.
    /// `tunnel` names the outer flow lb removed (for tunnel_parents), if any.
    public mutating func process(_ bytes: UnsafeRawBufferPointer, l3: Int, wireLength: Int, ts: UInt64,
                                 tunnel: UID? = nil, vlan: UInt16? = nil) {
        stats.packets &+= 1
        if ts > now { now = ts }
        let problem = PacketParser.parse(bytes, l3: l3, wireLength: wireLength, ts: ts,
                                         ignoreChecksums: config.ignoreChecksums, into: &packet)
        switch problem {
        case .none: break
        case .notIP: stats.notIP &+= 1; return
        case .truncatedIP, .truncatedTransport: stats.truncated &+= 1; return
        case .badIPHeader, .badTCPHeader: stats.badHeader &+= 1; return
        case .badIPChecksum: stats.badIPChecksum &+= 1; return
        case .fragment: stats.fragments &+= 1; return
        case .otherProtocol: stats.otherProtocol &+= 1; return
        }
        stats.tracked &+= 1
        let p = packet
        if now &- lastSweep >= config.sweepInterval {
            sweep(now: now)
            lastSweep = now
        }
        handle(p, bytes, tunnel: tunnel, vlan: vlan)
    }

    // MARK: Lookup

    mutating func handle(_ p: FlowPacket, _ bytes: UnsafeRawBufferPointer, tunnel: UID?, vlan: UInt16?) {
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
            guard index.count < config.maxConnections else { stats.tableFull &+= 1; return }
            i = newConn(p, key: key, sport: sport, dport: dport)
        }
        var c = conns[i]
        if slot == nil {
            c.lastTunnel = tunnel
        } else if tunnel != c.lastTunnel {
            // Connection::CheckEncapsulation: the encapsulation changed (tunnel_changed)
            _ = c.checkHistory(0x4000, UInt8(ascii: "X"), isOrig: true)
            c.lastTunnel = tunnel
        }
        if let tunnel {
            if c.tunnel0 == nil { c.tunnel0 = tunnel } else if c.tunnel0 != tunnel && c.tunnel1 == nil { c.tunnel1 = tunnel }
        }
        if c.vlan == nil, let vlan { c.vlan = vlan }
        let isOrig = p.src == c.origH && sport == c.origP
        switch c.transport {
        case .tcp: tcp(&c, p, isOrig: isOrig)
        case .udp: udp(&c, p, isOrig: isOrig)
        case .icmp: icmp(&c, p, isOrig: isOrig)
        }
        conns[i] = c
    }

    mutating func newConn(_ p: FlowPacket, key: ConnKey, sport: UInt16, dport: UInt16) -> Int {
        let transport: Transport = p.proto == 6 ? .tcp : p.proto == 17 ? .udp : .icmp
        var flip = false
        switch transport {
        case .tcp:
            let f = p.flags
            if f & TCPFlag.syn == 0 || f & TCPFlag.ack != 0 {
                if LikelyServerPorts.tcp.contains(sport) {
                    if LikelyServerPorts.tcp.contains(dport) {
                        flip = f & TCPFlag.syn == 0 && sport < dport
                    } else {
                        flip = true
                    }
                }
            }
        case .udp:
            flip = LikelyServerPorts.udp.contains(sport) && !LikelyServerPorts.udp.contains(dport)
        case .icmp:
            flip = false
        }
        let timeout = transport == .icmp ? config.icmpInactivity : config.udpInactivity
        var c = Conn(key: key, transport: transport, ipProto: p.proto, origH: p.src, respH: p.dst,
                     origP: sport, respP: dport, start: p.ts, last: p.ts, uid: uids.next(),
                     orig: Endpoint(isOrig: true), resp: Endpoint(isOrig: false), inactivityTimeout: timeout)
        if transport == .tcp { c.expireBase = p.ts &+ config.tcpSYNTimeout }
        if flip && !p.dst.isBroadcast {
            c.flipRoles()
        } else if transport == .tcp && p.flags & (TCPFlag.syn | TCPFlag.ack) == TCPFlag.syn | TCPFlag.ack {
            c.startedWithSYNACK = true
        }
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
        return i
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

    // MARK: UDP

    mutating func udp(_ c: inout Conn, _ p: FlowPacket, isOrig: Bool) {
        // the conn-size analyzer sees the packet before the checksum check
        if isOrig { c.orig.packets &+= 1; c.orig.ipBytes &+= UInt64(p.ipLength) }
        else { c.resp.packets &+= 1; c.resp.ipBytes &+= UInt64(p.ipLength) }
        guard p.checksumOK else {
            var e = isOrig ? c.orig : c.resp
            c.scaled(UInt8(ascii: "C"), &e.chkCount, &e.chkThresh, isOrig: isOrig)
            if isOrig { c.orig = e } else { c.resp = e }
            return
        }
        c.last = p.ts
        let ulen = Int64(p.udpLength) - 8
        if isOrig {
            _ = c.checkHistory(0x1, UInt8(ascii: "D"), isOrig: true)
            c.orig.dgramBytes = c.orig.dgramBytes < 0 ? ulen : c.orig.dgramBytes + ulen
        } else {
            // Zeek's UDP masks are separate bits per direction (0x2 for the responder)
            _ = c.checkHistory(0x2, UInt8(ascii: "d"), isOrig: true)
            c.resp.dgramBytes = c.resp.dgramBytes < 0 ? ulen : c.resp.dgramBytes + ulen
        }
    }
}
