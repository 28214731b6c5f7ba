import Glibc
import Synchronization
import LBCore
import LBRing
import LBSys

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
    /// the `udp::` ingress's counters, when that is the input
    public var udp: UDPStats? = nil
    /// shunt requests and tables (set by the serve path)
    var shunts: ShuntService? = nil
    /// --tenant-tag is on (its counters are shown)
    public var tenantTagging = false
    /// forwarded members' counters (fragmented, send errors, downs), by ring name
    public var forward: (@Sendable () -> (fragmented: [(String, UInt64)], sendErrors: [(String, UInt64)], downs: [(String, UInt64)]))? = nil
    /// the live ingress's counters (AF_XDP, AF_PACKET), when that is the input
    public var ingress: (() -> IngressStatus)? = nil
    /// a capture replay: bytes of the file not read (UInt64.max: not known yet, or not a file);
    /// set by the serving thread when the replay ends
    let inputUnread = Atomic<UInt64>(.max)
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
        metrics?.serve { open in Prometheus.render(self.snapshot(), openMetrics: open) }
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
        // one line per change, however many rings it concerns
        let back = records.indices.filter { !was[$0] && live[$0] }.map { records[$0].name }
        let down = records.indices.filter { was[$0] && !live[$0] }.map { records[$0].name }
        if !down.isEmpty { log("\(RingList.summary(down)): consumer gone or stuck; buckets move to the group's live rings (\(moved) buckets moved)") }
        if !back.isEmpty { log("\(RingList.summary(back)): back; buckets return (\(moved) buckets moved)") }
    }

    /// The one place lb's status is taken: every view renders this.
    public func snapshot() -> StatusSnapshot {
        let c = shared.totals()
        let now = Sys.monoNanos(), wall = Sys.wallNanos()
        var rings: [RingStatus] = []
        var fixedCounts: [Int] = []
        if failover == nil, let b = shared.buckets {
            for g in 0..<b.groupCount { fixedCounts += b.bucketCounts(group: g) }
        }
        var total = LBStatus(interface: input)
        for (i, r) in records.enumerated() {
            let g = r.global
            var s = RingStatus(interface: r.name.description, outputRing: g, group: r.name.group, ring: r.name.index)
            s.packetsForwarded = c.get(ring: g, .forwarded)
            s.bytesForwarded = c.get(ring: g, .forwardedBytes)
            s.droppedRingFull = c.get(ring: g, .droppedFull)
            s.droppedNoConsumer = c.get(ring: g, .droppedNoConsumer)
            s.droppedStalled = c.get(ring: g, .droppedStalled)
            s.packetsDropped = s.droppedRingFull &+ s.droppedNoConsumer &+ s.droppedStalled
            s.truncated = c.get(ring: g, .truncated)
            s.shuntedPackets = c.get(ring: g, .shunted)
            s.shuntedBytes = c.get(ring: g, .shuntedBytes)
            s.filteredPackets = c.get(ring: g, .filtered)
            s.slicedPackets = c.get(ring: g, .sliced)
            s.slots = r.memory.geometry.slots * r.memory.geometry.lanes
            s.backlog = r.memory.backlog
            let attached = shared.isAttached(g)
            s.consumer = attached ? (shared.isStalled(g) ? "stalled" : "attached") : "detached"
            s.consumerPid = attached ? Int(r.consumerPID) : nil
            s.consumerAttaches = r.attaches
            s.consumerStuckSeconds = Double(watch[i].stuck) / 1e9
            s.consumerDetachedSeconds = watch[i].detachedSince.map { Double(now &- $0) / 1e9 } ?? 0
            WorkerReportFields.fill(&s, r.memory.consumerReport(), nowWallNanos: wall)
            if let f = failover {
                s.buckets = f.held[g]
                s.failedOver = !f.live[g]
                s.failovers = f.failovers[g]
            } else if g < fixedCounts.count {
                s.buckets = fixedCounts[g]
            }
            total.packetsForwarded &+= s.packetsForwarded
            total.bytesForwarded &+= s.bytesForwarded
            total.packetsDropped &+= s.packetsDropped
            rings.append(s)
        }
        var moves: [(String, UInt64)] = []
        if let b = shared.buckets {
            // two -p with one name make one group of rings but two tables: one count per name
            for g in 0..<b.groupCount where b.firstRing[g] < records.count {
                let name = records[b.firstRing[g]].name.group, n = failover?.moves[g] ?? 0
                if let k = moves.firstIndex(where: { $0.0 == name }) { moves[k].1 &+= n } else { moves.append((name, n)) }
            }
        }
        total.pid = Int(getpid())
        total.uptimeSeconds = Double(now &- started) / 1e9
        total.packetsReceived = c.get(.received)
        total.bytesReceived = c.get(.receivedBytes)
        total.nonIpPackets = c.get(.nonIP)
        total.packetsUnparsed = c.get(.unparsed)
        total.packetsTruncated = c.get(.truncated)
        total.amsduSubframes = c.get(.subframes)
        if tenantTagging {
            total.tenantTagged = c.get(.tenantTagged)
            total.tenantFolded = c.get(.tenantFolded)
            total.tenantCollisions = c.get(.tenantCollisions)
        }
        total.consumerProtocolErrors = c.get(.badTails)
        total.failoverAfterSeconds = failover == nil ? nil : Double(failoverAfter) / 1e9
        total.failoverBucketMoves = NamedCounts(moves)
        total.decapsulated = NamedCounts(c.decapsulatedByKind())
        total.unparsed = NamedCounts(c.unparsedByReason())
        total.fragments = NamedCounts(c.fragmentCounts())
        total.udp = udp?.status()
        total.ingress = ingress?()
        if let f = forward?() {
            total.forwardFragmented = NamedCounts(f.fragmented)
            total.forwardSendErrors = NamedCounts(f.sendErrors)
            total.forwardDowns = NamedCounts(f.downs)
        }
        total.metricsScrapes = metrics?.scrapes
        let unread = inputUnread.load(ordering: .acquiring)
        total.inputUnreadBytes = unread == .max ? nil : unread
        shuntStatus(&total)
        if let t = shared.dedup {
            total.dedupWindowSeconds = Double(t.windowNanos) / 1e9
            total.packetsDeduplicated = c.get(.deduplicated)
        }
        return StatusSnapshot(ts: Double(wall) / 1e9, lb: total, rings: rings)
    }

    /// The shunt tables' counters, per group name: the tables of lane 0 (every data-path
    /// thread gets every request), and the requests the control thread refused.
    func shuntStatus(_ total: inout LBStatus) {
        guard let service = shunts, let lane0 = service.channels.first else { return }
        var entries: [(String, UInt64)] = [], added: [(String, UInt64)] = [], refused: [(String, UInt64)] = []
        var expired: [(String, UInt64)] = [], removed: [(String, UInt64)] = [], ended: [(String, UInt64)] = []
        func add(_ list: inout [(String, UInt64)], _ name: String, _ v: UInt64) {
            if let k = list.firstIndex(where: { $0.0 == name }) { list[k].1 &+= v } else { list.append((name, v)) }
        }
        for (g, name) in service.groups.enumerated() where g < 64 {
            let c = lane0.counters(group: g)
            add(&entries, name, c.entries); add(&added, name, c.added); add(&refused, name, c.refused)
            add(&expired, name, c.expired); add(&removed, name, c.removed); add(&ended, name, service.ended[g])
        }
        total.shuntEntries = NamedCounts(entries)
        total.shuntAdded = NamedCounts(added)
        total.shuntRefused = NamedCounts(refused)
        total.shuntExpired = NamedCounts(expired)
        total.shuntRemoved = NamedCounts(removed)
        total.shuntEnded = NamedCounts(ended)
        total.shuntRequestsRefused = NamedCounts(service.refusedByReason)
        if service.xdp != nil {
            total.shuntXDPFlows = service.xdpInstalled &- service.xdpRemoved
            total.shuntXDPAdded = service.xdpInstalled
        }
    }

    /// The answer to a stats request: the snapshot as one JSON document.
    public func statsJSON() -> String { StatusEncoder.encode(snapshot()).json + "\n" }
}
