import Glibc
import LBCore
import LBRing
import LBSys

/// What the operator tools see of one ring at one moment.
public struct RingStatus: Sendable {
    public var name: RingName
    public var global: Int
    public var forwarded: UInt64 = 0, bytes: UInt64 = 0
    public var droppedFull: UInt64 = 0, droppedNoConsumer: UInt64 = 0, droppedStalled: UInt64 = 0
    public var truncated: UInt64 = 0
    public var backlog: UInt64 = 0, slots: Int = 0
    public var attached = false
    /// the data path gave up waiting for this consumer (capture replay)
    public var stalled = false
    public var consumerPID: Int32 = 0
    public var attaches: UInt64 = 0
    /// seconds the consumer has had packets waiting and released none (0: it keeps up)
    public var stuckSeconds: Double = 0
    /// seconds since the consumer left (0 while attached)
    public var detachedSeconds: Double = 0
    /// the consumer's own report (lb_consumer_report), as written (validated only when shown:
    /// WorkerReportFields)
    public var report = ConsumerReport()
    public var processed: UInt64 { report.packetsProcessed }
    public var lossGaps: UInt64 { report.lossGaps }
    public var lossAcks: UInt64 { report.lossAcks }
    public var reportAgeSeconds: Double? = nil
    /// buckets of the group's 4096 this ring holds now, and whether failover moved its own away
    public var buckets: Int = 0
    public var failedOver = false
    public var failovers: UInt64 = 0
    public var dropped: UInt64 { droppedFull &+ droppedNoConsumer &+ droppedStalled }
}

/// lb as a whole at one moment.
public struct LBStatus: Sendable {
    public var pid: Int32
    public var input: String
    public var uptimeSeconds: Double
    public var received: UInt64, receivedBytes: UInt64, nonIP: UInt64, unparsed: UInt64, truncated: UInt64
    public var protocolErrors: UInt64
    public var decapsulated: [(String, UInt64)]
    public var unparsedBy: [(String, UInt64)]
    public var fragments: [(String, UInt64)]
    /// nil: failover off
    public var failoverAfterSeconds: Double?
    public var failoverMoves: [(String, UInt64)]
    public var rings: [RingStatus]
}

/// The operator side of the control thread: watches every ring's consumer (is it attached, does
/// it make progress), drives failover, answers stats requests and serves Prometheus metrics.
/// Called from the control thread only (`tick`), so it needs no lock.
public final class Operations: @unchecked Sendable {
    struct Watch {
        var lastTail: UInt64 = 0
        var lastProgress: UInt64 = 0
        var detachedSince: UInt64? = nil
        var stuck: UInt64 = 0
    }

    let records: [RingRecord]
    let shared: SharedState
    let input: String
    let started = Sys.monoNanos()
    var watch: [Watch]
    /// nil: off
    let failover: Failover?
    let failoverAfter: UInt64
    var metrics: MetricsServer? = nil
    let log: (String) -> Void

    public init(records: [RingRecord], shared: SharedState, input: String, failoverAfterSeconds: Double?,
                log: @escaping (String) -> Void) {
        self.records = records
        self.shared = shared
        self.input = input
        self.log = log
        let now = Sys.monoNanos()
        watch = records.map { _ in Watch(lastProgress: now, detachedSince: now) }
        if let s = failoverAfterSeconds, let tables = shared.buckets {
            failover = Failover(tables: tables)
            failoverAfter = UInt64(s * 1e9)
        } else {
            failover = nil
            failoverAfter = 0
        }
    }

    /// Serves Prometheus metrics on ADDR:PORT. Returns the port (useful with port 0).
    public func serveMetrics(address: String, port: UInt16) throws(SysError) -> UInt16 {
        let m = try MetricsServer(address: address, port: port)
        metrics = m
        return m.port
    }

    /// One control-thread iteration.
    public func tick(now: UInt64) {
        observe(now: now)
        if let failover { applyFailover(failover) }
        metrics?.serve { self.prometheusText() }
    }

    func observe(now: UInt64) {
        for (i, r) in records.enumerated() {
            var w = watch[i]
            // The tails come from the consumer: one out of range (backwards, or past what lb
            // published) is no progress, however it changes -- lb treats that lane as full.
            var tail: UInt64 = 0, backlog: UInt64 = 0, valid = true
            for lane in 0..<r.memory.geometry.lanes {
                let h = r.memory.head(lane: lane), t = r.memory.tail(lane: lane)
                if h &- t <= UInt64(r.memory.geometry.slots) { backlog &+= h &- t } else { valid = false }
                tail &+= t
            }
            if shared.isAttached(r.global) {
                w.detachedSince = nil
                if valid && (tail != w.lastTail || backlog == 0) {
                    w.lastProgress = now
                }
                w.stuck = now &- w.lastProgress
            } else {
                if w.detachedSince == nil { w.detachedSince = now }
                w.lastProgress = now
                w.stuck = 0
            }
            w.lastTail = tail
            watch[i] = w
        }
    }

    /// A ring is down once its consumer has been gone, or stuck with packets waiting, for the
    /// failover time; it is live again as soon as a consumer is attached and keeps up.
    func applyFailover(_ f: Failover) {
        let now = Sys.monoNanos()
        var live = f.live
        for (i, w) in watch.enumerated() {
            let down = w.detachedSince.map { now &- $0 } ?? w.stuck
            live[i] = down < failoverAfter
        }
        guard live != f.live else { return }
        let was = f.live
        let moved = f.apply(live: live)
        for (i, r) in records.enumerated() where was[i] != live[i] {
            log("\(r.name): \(live[i] ? "back; its buckets return to it" : "consumer gone or stuck; its buckets move to the group's live rings") (\(moved) buckets moved)")
        }
    }

    /// The current state of lb and every ring.
    public func status() -> LBStatus {
        let c = shared.totals()
        let now = Sys.monoNanos(), wall = Sys.wallNanos()
        var rings: [RingStatus] = []
        var fixedCounts: [Int] = []
        if failover == nil, let b = shared.buckets {
            for g in 0..<b.groupCount { fixedCounts += b.bucketCounts(group: g) }
        }
        for (i, r) in records.enumerated() {
            let g = r.global
            var s = RingStatus(name: r.name, global: g)
            s.forwarded = c.get(ring: g, .forwarded)
            s.bytes = c.get(ring: g, .forwardedBytes)
            s.droppedFull = c.get(ring: g, .droppedFull)
            s.droppedNoConsumer = c.get(ring: g, .droppedNoConsumer)
            s.droppedStalled = c.get(ring: g, .droppedStalled)
            s.truncated = c.get(ring: g, .truncated)
            s.slots = r.memory.geometry.slots * r.memory.geometry.lanes
            s.backlog = r.memory.backlog
            s.attached = shared.isAttached(g)
            s.stalled = shared.isStalled(g)
            s.consumerPID = s.attached ? r.consumerPID : 0
            s.attaches = r.attaches
            s.stuckSeconds = Double(watch[i].stuck) / 1e9
            s.detachedSeconds = watch[i].detachedSince.map { Double(now &- $0) / 1e9 } ?? 0
            let report = r.memory.consumerReport()
            s.report = report
            if report.heartbeatNanos != 0 && s.attached {
                s.reportAgeSeconds = Double(Int64(bitPattern: wall &- report.heartbeatNanos)) / 1e9
            }
            if let f = failover {
                s.buckets = f.held[g]
                s.failedOver = !f.live[g]
                s.failovers = f.failovers[g]
            } else if g < fixedCounts.count {
                s.buckets = fixedCounts[g]
            }
            rings.append(s)
        }
        var moves: [(String, UInt64)] = []
        if let b = shared.buckets {
            for g in 0..<b.groupCount where b.firstRing[g] < records.count {
                moves.append((records[b.firstRing[g]].name.group, failover?.moves[g] ?? 0))
            }
        }
        return LBStatus(
            pid: getpid(), input: input, uptimeSeconds: Double(now &- started) / 1e9,
            received: c.get(.received), receivedBytes: c.get(.receivedBytes), nonIP: c.get(.nonIP),
            unparsed: c.get(.unparsed), truncated: c.get(.truncated), protocolErrors: c.get(.badTails),
            decapsulated: c.decapsulatedByKind(), unparsedBy: c.unparsedByReason(), fragments: c.fragmentCounts(),
            failoverAfterSeconds: failover == nil ? nil : Double(failoverAfter) / 1e9,
            failoverMoves: moves, rings: rings)
    }

    /// The answer to a stats request: one JSON line per ring, then one for lb (no rates: the
    /// reader computes them from two snapshots).
    public func statsJSON() -> String {
        let s = status()
        let wall = Sys.wallNanos()
        let ts = JSONObject.fixed(Double(wall) / 1e9, 6)
        var out = ""
        for r in s.rings {
            var j = JSONObject()
            j.add("ts", raw: ts)
            j.add("interface", r.name.description)
            j.add("output_ring", r.global)
            j.add("group", r.name.group)
            j.add("ring", r.name.index)
            j.add("packets_forwarded", r.forwarded)
            j.add("packets_dropped", r.dropped)
            j.add("bytes_forwarded", r.bytes)
            j.add("dropped_ring_full", r.droppedFull)
            j.add("dropped_no_consumer", r.droppedNoConsumer)
            j.add("dropped_stalled", r.droppedStalled)
            j.add("truncated", r.truncated)
            j.add("backlog", r.backlog)
            j.add("slots", r.slots)
            j.add("consumer", r.attached ? (r.stalled ? "stalled" : "attached") : "detached")
            if r.attached { j.add("consumer_pid", Int(r.consumerPID)) } else { j.addNull("consumer_pid") }
            j.add("consumer_attaches", r.attaches)
            j.add("consumer_stuck_seconds", r.stuckSeconds, digits: 3)
            j.add("consumer_detached_seconds", r.detachedSeconds, digits: 3)
            j.add("consumer_packets_processed", r.processed)
            // the same worker fields, validated the same way, as the -o lines
            WorkerReportFields.add(to: &j, r.report, forwarded: r.forwarded, nowWallNanos: wall)
            j.add("buckets", r.buckets)
            j.add("failed_over", r.failedOver)
            j.add("failovers", r.failovers)
            out += j.rendered + "\n"
        }
        var a = JSONObject()
        a.add("ts", raw: ts)
        a.add("interface", s.input)
        a.addNull("output_ring")
        a.add("pid", Int(s.pid))
        a.add("uptime_seconds", s.uptimeSeconds, digits: 3)
        a.add("packets_received", s.received)
        a.add("packets_forwarded", s.rings.reduce(UInt64(0)) { $0 &+ $1.forwarded })
        a.add("packets_dropped", s.rings.reduce(UInt64(0)) { $0 &+ $1.dropped })
        a.add("non_ip_packets", s.nonIP)
        a.add("bytes_received", s.receivedBytes)
        a.add("packets_unparsed", s.unparsed)
        a.add("packets_truncated", s.truncated)
        a.add("consumer_protocol_errors", s.protocolErrors)
        if let f = s.failoverAfterSeconds { a.add("failover_after_seconds", f, digits: 3) } else { a.addNull("failover_after_seconds") }
        a.add("failover_bucket_moves", counts: s.failoverMoves)
        a.add("decapsulated", counts: s.decapsulated)
        a.add("unparsed", counts: s.unparsedBy)
        a.add("fragments", counts: s.fragments)
        out += a.rendered + "\n"
        return out
    }
}
