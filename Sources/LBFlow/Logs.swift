// conn.log and capture_loss.log: Zeek's columns and their values.

public enum ConnLog {
    public static let fields = [
        "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration",
        "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp", "missed_bytes", "history",
        "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents", "ip_proto",
    ]
    public static let types = [
        "time", "string", "addr", "port", "addr", "port", "enum", "string", "interval",
        "count", "count", "string", "bool", "bool", "count", "string",
        "count", "count", "count", "count", "set[string]", "count",
    ]

    public static func writer(format: LogFormat, fd: Int32 = 1, directory: String? = nil,
                              rotateSeconds: Double = 0) throws(LogError) -> LogWriter {
        try LogWriter(path: "conn", format: format, fields: fields, types: types, fd: fd,
                      directory: directory, rotateSeconds: rotateSeconds)
    }

    /// Appends one record. `service`, `local_orig` and `local_resp` stay unset: they need
    /// protocol analysis and Site::local_nets, which this worker does not have.
    public static func write(_ r: ConnRecord, to w: inout LogWriter) throws(LogError) {
        try w.begin(ts: r.ts)
        w.field("ts", Fmt.seconds(r.ts), quoted: false)
        var uid: [UInt8] = []
        r.uid.append(to: &uid)
        w.field("uid", uid, quoted: true)
        w.field("id.orig_h", Fmt.addr(r.origH), quoted: true)
        w.field("id.orig_p", Fmt.uint(UInt64(r.origP)), quoted: false)
        w.field("id.resp_h", Fmt.addr(r.respH), quoted: true)
        w.field("id.resp_p", Fmt.uint(UInt64(r.respP)), quoted: false)
        w.field("proto", Array(r.transport.name.utf8), quoted: true)
        w.field("service", nil, quoted: true)
        if let d = r.duration {
            w.field("duration", Fmt.seconds(d), quoted: false)
            w.field("orig_bytes", Fmt.uint(r.origBytes), quoted: false)
            w.field("resp_bytes", Fmt.uint(r.respBytes), quoted: false)
        } else {
            w.field("duration", nil, quoted: false)
            w.field("orig_bytes", nil, quoted: false)
            w.field("resp_bytes", nil, quoted: false)
        }
        w.field("conn_state", Array(r.connState.utf8), quoted: true)
        w.field("local_orig", nil, quoted: false)
        w.field("local_resp", nil, quoted: false)
        w.field("missed_bytes", Fmt.uint(r.missedBytes), quoted: false)
        w.field("history", r.history.count > 0 ? Array(r.history.string.utf8) : nil, quoted: true)
        w.field("orig_pkts", Fmt.uint(r.origPkts), quoted: false)
        w.field("orig_ip_bytes", Fmt.uint(r.origIPBytes), quoted: false)
        w.field("resp_pkts", Fmt.uint(r.respPkts), quoted: false)
        w.field("resp_ip_bytes", Fmt.uint(r.respIPBytes), quoted: false)
        var parents: [[UInt8]] = []
        for p in [r.tunnelParents.0, r.tunnelParents.1] {
            if let p { var s: [UInt8] = []; p.append(to: &s); parents.append(s) }
        }
        w.setField("tunnel_parents", parents)
        w.field("ip_proto", Fmt.uint(UInt64(r.ipProto)), quoted: false)
        try w.end()
    }
}

/// Zeek's policy/misc/capture-loss.zeek: every `interval` of network time, the acks seen and
/// the gaps among them since the last measurement, as capture_loss.log records.
public struct CaptureLoss {
    public struct Measurement: Sendable, Equatable {
        public var ts: UInt64
        public var delta: UInt64
        public var gaps: UInt64
        public var acks: UInt64
        public var percentLost: Double {
            acks == 0 ? 0 : 100 * Double(gaps) / Double(acks)
        }
    }

    public let interval: UInt64
    var lastTS: UInt64 = 0
    var last = LossCounters()

    public init(intervalSeconds: Double = 900) {
        interval = UInt64(max(intervalSeconds, 0.001) * 1e9)
    }

    /// Call with the network time and the cumulative counters; returns a measurement when an
    /// interval has passed (the first call only starts the clock).
    public mutating func tick(now: UInt64, _ total: LossCounters) -> Measurement? {
        // The first call starts the first interval; its counts stay in it (Zeek's script starts
        // from zero too), so the records of a worker add up to its totals.
        if lastTS == 0 { lastTS = now; return nil }
        guard now >= lastTS &+ interval else { return nil }
        return take(now: now, total)
    }

    /// A measurement now, whatever the interval (end of stream).
    public mutating func take(now: UInt64, _ total: LossCounters) -> Measurement {
        let m = Measurement(ts: now, delta: lastTS == 0 ? 0 : now &- lastTS, gaps: total.gaps &- last.gaps,
                            acks: total.acks &- last.acks)
        lastTS = now
        last = total
        return m
    }

    public static let fields = ["ts", "ts_delta", "peer", "gaps", "acks", "percent_lost"]
    public static let types = ["time", "interval", "string", "count", "count", "double"]

    public static func write(_ m: Measurement, peer: String, to w: inout LogWriter) throws(LogError) {
        try w.begin(ts: m.ts)
        w.field("ts", Fmt.seconds(m.ts), quoted: false)
        w.field("ts_delta", Fmt.seconds(m.delta), quoted: false)
        w.field("peer", Array(peer.utf8), quoted: true)
        w.field("gaps", Fmt.uint(m.gaps), quoted: false)
        w.field("acks", Fmt.uint(m.acks), quoted: false)
        w.field("percent_lost", Fmt.double(m.percentLost), quoted: false)
        try w.end()
    }
}
