// A tracked connection and the record it becomes in conn.log.

public enum Transport: UInt8, Sendable {
    case tcp = 6, udp = 17, icmp = 1
    /// any other IP protocol (SCTP, OSPF, VRRP, IGMP, PIM, ...): Zeek's Unknown_IP_Transport
    /// analyzer keys it on the addresses and the protocol, ports 0
    case unknown = 255
    public var name: String {
        switch self {
        case .tcp: "tcp"
        case .udp: "udp"
        case .icmp: "icmp"
        case .unknown: "unknown_transport"
        }
    }
}

/// Zeek's history string: up to `History.capacity` letters, stored inline.
public struct History: Sendable, Equatable {
    public static let capacity = 24
    var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0
    public private(set) var count: UInt8 = 0
    /// letters that did not fit
    public private(set) var overflow: UInt8 = 0

    public init() {}
    public init(_ s: String) { for c in s.utf8 { append(c) } }

    mutating func append(_ c: UInt8) {
        guard Int(count) < Self.capacity else { overflow &+= 1; return }
        let i = Int(count)
        let shift = UInt64((i % 8) * 8)
        switch i / 8 {
        case 0: w0 |= UInt64(c) << shift
        case 1: w1 |= UInt64(c) << shift
        default: w2 |= UInt64(c) << shift
        }
        count += 1
    }

    public subscript(i: Int) -> UInt8 {
        let w = i < 8 ? w0 : i < 16 ? w1 : w2
        return UInt8(truncatingIfNeeded: w >> UInt64((i % 8) * 8))
    }

    public var string: String {
        var bytes: [UInt8] = []
        for i in 0..<Int(count) { bytes.append(self[i]) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// What conn.log says about one connection (all fields, before formatting).
public struct ConnRecord: Sendable {
    public var ts: UInt64
    public var uid: UID
    public var origH: IPAddr
    public var origP: UInt16
    public var respH: IPAddr
    public var respP: UInt16
    public var transport: Transport
    public var ipProto: UInt8
    /// nanoseconds; nil when Zeek leaves duration (and the byte counts) unset
    public var duration: UInt64?
    public var origBytes: UInt64
    public var respBytes: UInt64
    public var connState: String
    public var missedBytes: UInt64
    public var history: History
    public var origPkts: UInt64
    public var origIPBytes: UInt64
    public var respPkts: UInt64
    public var respIPBytes: UInt64
    public var tunnelParents: (UID?, UID?)
    public var vlan: UInt16?
}

struct Conn {
    var key: ConnKey
    var transport: Transport
    var ipProto: UInt8
    var origH: IPAddr
    var respH: IPAddr
    var origP: UInt16
    var respP: UInt16
    var start: UInt64
    var last: UInt64
    var uid: UID
    var orig: Endpoint
    var resp: Endpoint
    var history = History()
    var histSeen: UInt32 = 0
    var missedBytes: UInt64 = 0
    var inactivityTimeout: UInt64
    /// TCP timers (ns; 0 = none), evaluated lazily, see ConnTable.expired
    var attemptAt: UInt64 = 0
    var deleteAt: UInt64 = 0
    var expireBase: UInt64 = 0
    var expireBase2: UInt64 = 0
    /// the DNS analyzer's ExpireTimer (0: none)
    var dnsTimerAt: UInt64 = 0
    /// the DNS analyzer saw its first message / the NTP analyzer flipped (each acts once)
    var appSeenFirst = false
    /// lb shunts this connection (`--shunt-after`): until its end report, no expiry
    var shunted = false
    var payloadSeen: UInt64 = 0
    var isActive = true
    var isPartial = false
    var firstPacketSeen: UInt8 = 0
    var seenFirstACK = false
    var closeDeferred = false
    var deferredGenEvent = false
    var tunnel0: UID? = nil
    var tunnel1: UID? = nil
    var vlan: UInt16? = nil
    var lastTunnel: UID? = nil
    var tunnelChanges: UInt16 = 0

    mutating func addHistory(_ c: UInt8) { history.append(c) }

    /// Zeek's Connection::CheckHistory: records `code` the first time `mask` is seen; true if
    /// it had been seen before.
    mutating func checkHistory(_ mask: UInt32, _ code: UInt8, isOrig: Bool) -> Bool {
        let m = isOrig ? mask : mask << 16
        let c = isOrig ? code : code | 0x20
        if histSeen & m == 0 {
            histSeen |= m
            history.append(c)
            return false
        }
        return true
    }

    /// Zeek's ScaledHistoryEntry: the letter again at 1, 10, 100, ... occurrences.
    mutating func scaled(_ code: UInt8, _ counter: inout UInt32, _ threshold: inout UInt32, isOrig: Bool) {
        counter &+= 1
        if counter == threshold {
            history.append(isOrig ? code : code | 0x20)
            let next = threshold &* 10
            threshold = next > threshold ? next : UInt32.max
        }
    }

    /// Connection::FlipRoles: swaps the endpoints and appends '^' to the history (`mark`: false
    /// when the caller has put the '^' where Zeek does). The history's letters and the masks of
    /// letters seen stay as they are, as in Zeek.
    mutating func flipRoles(mark: Bool = true) {
        swap(&origH, &respH)
        swap(&origP, &respP)
        swap(&orig, &resp)
        orig.isOrig = true
        resp.isOrig = false
        if mark { addHistory(UInt8(ascii: "^")) }
    }

    func record() -> ConnRecord {
        // Zeek logs duration (and the byte counts) only when last_time - start_time > 0; packets
        // earlier than the first (a misordered trace) can make it negative
        let duration: UInt64 = last > start ? last - start : 0
        var origBytes: UInt64 = 0, respBytes: UInt64 = 0
        switch transport {
        case .tcp:
            origBytes = orig.size(peerState: resp.state)
            respBytes = resp.size(peerState: orig.state)
        case .unknown:
            break                 // Zeek never sets an endpoint's size for these: 0
        case .udp, .icmp:
            origBytes = orig.dgramBytes < 0 ? 0 : UInt64(orig.dgramBytes)
            respBytes = resp.dgramBytes < 0 ? 0 : UInt64(resp.dgramBytes)
        }
        return ConnRecord(ts: start, uid: uid, origH: origH, origP: origP, respH: respH, respP: respP,
                          transport: transport, ipProto: ipProto, duration: duration > 0 ? duration : nil,
                          origBytes: origBytes, respBytes: respBytes, connState: connState(),
                          missedBytes: missedBytes, history: history,
                          origPkts: orig.packets, origIPBytes: orig.ipBytes,
                          respPkts: resp.packets, respIPBytes: resp.ipBytes,
                          tunnelParents: (tunnel0, tunnel1), vlan: vlan)
    }

    /// conn/main.zeek's conn_state().
    func connState() -> String {
        switch transport {
        case .udp:
            let o = orig.dgramBytes >= 0, r = resp.dgramBytes >= 0
            if o { return r ? "SF" : "S0" }
            return r ? "SHR" : "OTH"
        case .icmp, .unknown:
            return "OTH"
        case .tcp:
            let os = orig.state, rs = resp.state
            let oInactive = os == .inactive || os == .partial
            let rInactive = rs == .inactive || rs == .partial
            if rs == .reset {
                if os == .synSent || os == .synAckSent
                    || (os == .reset && orig.size(peerState: rs) == 0 && resp.size(peerState: os) == 0) {
                    return "REJ"
                }
                return oInactive ? "RSTRH" : "RSTR"
            }
            if os == .reset {
                if rInactive { return historyLooksLikeRSTOS0() ? "RSTOS0" : "OTH" }
                return "RSTO"
            }
            if rs == .closed && os == .closed { return "SF" }
            if os == .closed { return rInactive ? "SH" : "S2" }
            if rs == .closed { return oInactive ? "SHR" : "S3" }
            if os == .synSent && rs == .inactive { return "S0" }
            if os == .established && rs == .established { return "S1" }
            return "OTH"
        }
    }

    /// /\^?S[^HAFGIQ]*R.*/ matched against the whole history.
    func historyLooksLikeRSTOS0() -> Bool {
        var i = 0
        let n = Int(history.count)
        if i < n && history[i] == UInt8(ascii: "^") { i += 1 }
        guard i < n, history[i] == UInt8(ascii: "S") else { return false }
        i += 1
        while i < n {
            let c = history[i]
            if c == UInt8(ascii: "R") { return true }
            switch c {
            case UInt8(ascii: "H"), UInt8(ascii: "A"), UInt8(ascii: "F"), UInt8(ascii: "G"),
                 UInt8(ascii: "I"), UInt8(ascii: "Q"): return false
            default: i += 1
            }
        }
        return false
    }
}

/// The table key: the 5-tuple, endpoints in canonical order except for one-way ICMP messages.
public struct ConnKey: Hashable, Sendable {
    var aHi: UInt64, aLo: UInt64, bHi: UInt64, bLo: UInt64
    var ports: UInt32
    var proto: UInt8

    init(src: IPAddr, sport: UInt16, dst: IPAddr, dport: UInt16, proto: UInt8, oneWay: Bool) {
        if oneWay || !endpointLess(dst, dport, src, sport) {
            aHi = src.hi; aLo = src.lo; bHi = dst.hi; bLo = dst.lo
            ports = UInt32(sport) << 16 | UInt32(dport)
        } else {
            aHi = dst.hi; aLo = dst.lo; bHi = src.hi; bLo = src.lo
            ports = UInt32(dport) << 16 | UInt32(sport)
        }
        self.proto = oneWay ? proto | 0x80 : proto
    }

    public func hash(into h: inout Hasher) {
        h.combine(aLo)
        h.combine(bLo)
        h.combine((aHi &* 31 &+ bHi) ^ (UInt64(ports) << 8 | UInt64(proto)))
    }
}

/// Orders (address, port) pairs as Zeek's ConnKey does (address first).
@inline(__always) func endpointLess(_ a: IPAddr, _ ap: UInt16, _ b: IPAddr, _ bp: UInt16) -> Bool {
    if a != b { return a < b }
    return ap < bp
}
