import Glibc
import LBSys

/// A very small HTTP/1.1 server for Prometheus: `GET /metrics` answers the text exposition
/// format, anything else 404. Non-blocking accept, read and write, polled from the control
/// thread; one request per connection (Connection: close). A request must arrive within 2 s and
/// fit in 8 KiB, and the client must take the answer within 2 s more. At the client cap the
/// oldest connection gives way to the new one, so idle or trickling connections (slowloris)
/// cannot keep a scrape out; no client ever blocks the control thread.
final class MetricsServer {
    struct Client {
        let fd: Int32
        var request: [UInt8]
        var deadline: UInt64
        /// the answer, once there is one, and how much of it went out
        var response: [UInt8]? = nil
        var sent = 0
    }

    let fd: Int32
    let port: UInt16
    var clients: [Client] = []
    /// requests answered (shown as lb_metrics_scrapes_total)
    var scrapes: UInt64 = 0
    static let maxClients = 64

    init(address: String, port: UInt16) throws(SysError) {
        (fd, self.port) = try Sys.listenTCP(address: address, port: port)
    }

    deinit {
        for c in clients { Sys.close(c.fd) }
        Sys.close(fd)
    }

    /// Accepts, reads and answers whatever is ready (never waits for a client).
    func serve(_ body: () -> String) {
        while let c = try? Sys.accept(fd) {
            if clients.count >= Self.maxClients {             // the oldest gives way
                Sys.close(clients[0].fd)
                clients.removeFirst()
            }
            clients.append(Client(fd: c, request: [], deadline: Sys.monoNanos() &+ 2_000_000_000))
        }
        guard !clients.isEmpty else { return }
        var keep: [Client] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let now = Sys.monoNanos()
        for var c in clients {
            if c.response == nil {
                var done = false
                while !done {
                    let n = buffer.withUnsafeMutableBytes { b in try? Sys.read(c.fd, into: b) }
                    guard let got = n ?? nil else { break }             // EAGAIN (or an error: closed below)
                    if got == 0 { done = true; break }
                    c.request += buffer[0..<got]
                    if c.request.count > 8192 { done = true }
                }
                if let path = Self.requestPath(c.request) {
                    c.response = answer(path: path, body)
                    c.deadline = now &+ 2_000_000_000
                } else if done || now > c.deadline {
                    Sys.close(c.fd)
                    continue
                }
            }
            if var r = c.response {
                let n = r.withUnsafeMutableBytes { b in Glibc.send(c.fd, b.baseAddress! + c.sent, b.count - c.sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if n > 0 { c.sent += n }
                let blocked = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                if c.sent == r.count || (n < 0 && !blocked) || now > c.deadline {
                    Sys.close(c.fd)
                    continue
                }
                c.response = r
            }
            keep.append(c)
        }
        clients = keep
    }

    /// The path of a complete GET request (headers ended), or nil.
    static func requestPath(_ r: [UInt8]) -> String? {
        guard r.count >= 4 else { return nil }
        var end = -1
        for i in 0...(r.count - 4) where r[i] == 13 && r[i + 1] == 10 && r[i + 2] == 13 && r[i + 3] == 10 { end = i; break }
        guard end >= 0 else { return nil }
        let line = r.prefix { $0 != 13 }.split(separator: 32)
        guard line.count >= 2 else { return "" }
        guard String(decoding: line[0], as: UTF8.self) == "GET" else { return "" }
        return String(decoding: line[1], as: UTF8.self)
    }

    func answer(path: String, _ body: () -> String) -> [UInt8] {
        let response: String
        if path == "/metrics" || path.hasPrefix("/metrics?") {
            scrapes += 1
            let text = body()
            response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(text.utf8.count)\r\nConnection: close\r\n\r\n" + text
        } else {
            let text = "lb serves Prometheus metrics at /metrics\n"
            response = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: \(text.utf8.count)\r\nConnection: close\r\n\r\n" + text
        }
        return Array(response.utf8)
    }
}

/// The Prometheus text exposition format of lb's status. Samples are kept per family and
/// written family by family, HELP and TYPE once each: the format requires every line of a
/// family to stand together, and strict (OpenMetrics) parsers reject interleaved families.
struct PrometheusText {
    struct Family { let header: String; var samples: String }
    var families: [Family] = []
    var index: [String: Int] = [:]

    var out: String { families.map { $0.header + $0.samples }.joined() }

    mutating func metric(_ name: String, _ type: String, _ help: String, _ labels: [(String, String)], _ value: String) {
        var line = name
        if !labels.isEmpty {
            line += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        line += " \(value)\n"
        if let i = index[name] {
            families[i].samples += line
        } else {
            index[name] = families.count
            families.append(Family(header: "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n", samples: line))
        }
    }

    mutating func counter(_ name: String, _ help: String, _ labels: [(String, String)] = [], _ v: UInt64) {
        metric(name, "counter", help, labels, String(v))
    }
    mutating func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = [], _ v: Double) {
        metric(name, "gauge", help, labels, JSONObject.fixed(v, 3))
    }
    mutating func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = [], _ v: Int) {
        metric(name, "gauge", help, labels, String(v))
    }

    static func escape(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "\\": o += "\\\\"
            case "\"": o += "\\\""
            case "\n": o += "\\n"
            default: o.append(c)
            }
        }
        return o
    }
}

extension Operations {
    /// Every metric, per ring (labels group, ring), per group, and for lb; losses by stage.
    func prometheusText() -> String {
        let s = status()
        var p = PrometheusText()
        p.gauge("lb_up", "1 while lb runs", [("input", s.input)], 1)
        p.gauge("lb_uptime_seconds", "seconds since lb started", [], s.uptimeSeconds)
        p.counter("lb_packets_received_total", "packets read from the input", [], s.received)
        p.counter("lb_bytes_received_total", "bytes read from the input", [], s.receivedBytes)
        p.counter("lb_packets_unparsed_total", "packets that did not parse fully (delivered, hashed on what was read)", [], s.unparsed)
        p.counter("lb_non_ip_packets_total", "frames without an IP layer", [], s.nonIP)
        p.counter("lb_packets_truncated_total", "packets longer than the slot size, truncated", [], s.truncated)
        p.counter("lb_consumer_protocol_errors_total", "consumer tails out of range (ignored)", [], s.protocolErrors)
        for (k, v) in s.decapsulated { p.counter("lb_decapsulated_total", "tunnels removed, by kind", [("encap", k)], v) }
        for (k, v) in s.unparsedBy { p.counter("lb_unparsed_total", "packets that did not parse, by reason", [("reason", k)], v) }
        for (k, v) in s.fragments { p.counter("lb_fragments_total", "the fragment table's counters", [("event", k)], v) }
        p.gauge("lb_failover_enabled", "1 when failover moves a failed ring's buckets", [], s.failoverAfterSeconds == nil ? 0 : 1)
        // Two -p with one name make one group of rings but two tables: one series per name.
        var moveNames: [String] = []
        var moves: [String: UInt64] = [:]
        for (g, n) in s.failoverMoves {
            if moves[g] == nil { moveNames.append(g) }
            moves[g, default: 0] &+= n
        }
        for g in moveNames { p.counter("lb_failover_bucket_moves_total", "buckets moved by failover (away and back)", [("group", g)], moves[g]!) }

        var groups: [String: (fwd: UInt64, drop: UInt64, live: Int, rings: Int)] = [:]
        var order: [String] = []
        for r in s.rings {
            let l = [("group", r.name.group), ("ring", String(r.name.index))]
            p.counter("lb_ring_packets_forwarded_total", "packets written into the ring", l, r.forwarded)
            p.counter("lb_ring_bytes_forwarded_total", "bytes written into the ring", l, r.bytes)
            p.counter("lb_ring_packets_dropped_total", "packets the ring dropped, by reason", l + [("reason", "ring_full")], r.droppedFull)
            p.counter("lb_ring_packets_dropped_total", "packets the ring dropped, by reason", l + [("reason", "no_consumer")], r.droppedNoConsumer)
            p.counter("lb_ring_packets_dropped_total", "packets the ring dropped, by reason", l + [("reason", "stalled")], r.droppedStalled)
            p.counter("lb_ring_packets_truncated_total", "packets truncated to the slot size", l, r.truncated)
            p.gauge("lb_ring_backlog", "packets written and not yet released by the consumer", l, Int(r.backlog))
            p.gauge("lb_ring_slots", "descriptors of the ring (all lanes)", l, r.slots)
            p.gauge("lb_ring_consumer_attached", "1 while a consumer is attached", l, r.attached ? 1 : 0)
            p.gauge("lb_ring_consumer_stuck_seconds", "seconds the consumer has had packets waiting and released none", l, r.stuckSeconds)
            p.gauge("lb_ring_consumer_detached_seconds", "seconds since the consumer left (0 while attached)", l, r.detachedSeconds)
            p.counter("lb_ring_consumer_attaches_total", "consumers that attached", l, r.attaches)
            p.gauge("lb_ring_buckets", "hash buckets (of 4096) the ring holds now", l, r.buckets)
            p.gauge("lb_ring_failed_over", "1 while failover has moved the ring's buckets away", l, r.failedOver ? 1 : 0)
            p.counter("lb_ring_failovers_total", "times the ring's buckets were moved away", l, r.failovers)
            p.counter("lb_worker_packets_processed_total", "packets the worker reports it processed", l, r.processed)
            p.counter("lb_worker_loss_gaps_total", "the worker's own loss estimate: gaps", l, r.lossGaps)
            p.counter("lb_worker_loss_acks_total", "the worker's own loss estimate: out of this many acks", l, r.lossAcks)
            if let a = r.reportAgeSeconds { p.gauge("lb_worker_report_age_seconds", "seconds since the worker last reported", l, a) }
            if groups[r.name.group] == nil { order.append(r.name.group) }
            var gsum = groups[r.name.group] ?? (0, 0, 0, 0)
            gsum.fwd &+= r.forwarded
            gsum.drop &+= r.dropped
            gsum.live += r.attached && !r.failedOver ? 1 : 0
            gsum.rings += 1
            groups[r.name.group] = gsum
        }
        // Loss by stage: lb's rings per ring above; the worker's own estimate above; totals here.
        for g in order {
            let v = groups[g]!
            p.counter("lb_group_packets_forwarded_total", "packets written into the group's rings", [("group", g)], v.fwd)
            p.counter("lb_group_packets_dropped_total", "packets the group's rings dropped", [("group", g)], v.drop)
            p.gauge("lb_group_rings", "rings in the group", [("group", g)], v.rings)
            p.gauge("lb_group_rings_live", "rings with a consumer that is not failed over", [("group", g)], v.live)
            p.counter("lb_loss_packets_total", "packets lost, by stage", [("stage", "lb_ring"), ("group", g)], v.drop)
        }
        if let m = metrics { p.counter("lb_metrics_scrapes_total", "metrics requests answered", [], m.scrapes) }
        return p.out
    }
}
