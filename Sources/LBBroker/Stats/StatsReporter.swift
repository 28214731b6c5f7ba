import LBCore
import LBSys

/// Builds the stats lines: one JSON object per ring, then one for the whole lb, with netmap
/// lb's field names (`interface`, `output_ring`, `packets_forwarded`, `packets_dropped`, the
/// rates ...) and lb's own additions. Rates cover the time since the previous report.
final class StatsReporter {
    struct RingSnapshot { var forwarded: UInt64 = 0, dropped: UInt64 = 0, bytes: UInt64 = 0, droppedBytes: UInt64 = 0 }

    let inputName: String
    let rings: [RingRecord]
    let shared: SharedState
    var previous: [RingSnapshot]
    var previousTotal = RingSnapshot()
    var previousNanos: UInt64
    /// the UDP ingress's counters (`udp` in lb's line), when the input is `udp::`
    var udp: UDPStats? = nil
    /// the live source's loss-by-stage block ("ingress"), if there is one
    var ingress: (() -> JSONObject)? = nil
    /// packets lost before lb read them (hardware and socket drops), for the rings' info block
    var upstreamDrops: (() -> UInt64)? = nil

    init(inputName: String, rings: [RingRecord], shared: SharedState) {
        self.inputName = inputName
        self.rings = rings
        self.shared = shared
        previous = Array(repeating: RingSnapshot(), count: rings.count)
        previousNanos = Sys.monoNanos()
    }

    /// The lines of one report (no trailing newline on each).
    func lines(final: Bool) -> [String] {
        let c = shared.totals()
        let nowMono = Sys.monoNanos()
        let seconds = max(Double(nowMono &- previousNanos) / 1e9, 1e-9)
        let ts = JSONObject.fixed(Double(Sys.wallNanos()) / 1e9, 6)
        var out: [String] = []
        var total = RingSnapshot()
        // Hash buckets (of 4096) each ring holds now: failover moves show here.
        var buckets: [Int] = []
        if let b = shared.buckets { for g in 0..<b.groupCount { buckets += b.bucketCounts(group: g) } }
        for r in rings {
            let i = r.global
            let fwd = c.get(ring: i, .forwarded)
            let full = c.get(ring: i, .droppedFull)
            let none = c.get(ring: i, .droppedNoConsumer)
            let stalled = c.get(ring: i, .droppedStalled)
            let dropped = full &+ none &+ stalled
            let bytes = c.get(ring: i, .forwardedBytes)
            let now = RingSnapshot(forwarded: fwd, dropped: dropped, bytes: bytes)
            let before = previous[i]
            total.forwarded &+= fwd
            total.dropped &+= dropped
            total.bytes &+= bytes
            let backlog = r.memory.backlog
            let report = r.memory.consumerReport()
            let attached = shared.isAttached(i)
            var j = JSONObject()
            j.add("ts", raw: ts)
            j.add("interface", r.name.description)
            j.add("output_ring", i)
            j.add("packets_forwarded", fwd)
            j.add("packets_dropped", dropped)
            j.add("data_forward_rate_Mbps", Double(bytes &- before.bytes) * 8 / 1048576 / seconds, digits: 4)
            j.add("data_drop_rate_Mbps", 0, digits: 4)
            j.add("packet_forward_rate_kpps", Double(fwd &- before.forwarded) / 1000 / seconds, digits: 4)
            j.add("packet_drop_rate_kpps", Double(dropped &- before.dropped) / 1000 / seconds, digits: 4)
            j.add("overflow_queue_size", 0)
            j.add("group", r.name.group)
            j.add("ring", r.name.index)
            j.add("bytes_forwarded", bytes)
            j.add("dropped_ring_full", full)
            j.add("dropped_no_consumer", none)
            j.add("dropped_stalled", stalled)
            j.add("truncated", c.get(ring: i, .truncated))
            j.add("backlog", backlog)
            if i < buckets.count { j.add("buckets", buckets[i]) }
            j.add("consumer", attached ? (shared.isStalled(i) ? "stalled" : "attached") : "detached")
            if attached { j.add("consumer_pid", Int(r.consumerPID)) } else { j.addNull("consumer_pid") }
            j.add("consumer_attaches", r.attaches)
            j.add("consumer_packets_processed", report.packetsProcessed)
            WorkerReportFields.add(to: &j, report, forwarded: fwd, nowWallNanos: Sys.wallNanos())
            out.append(j.rendered)
            previous[i] = now
        }

        var a = JSONObject()
        a.add("ts", raw: ts)
        a.add("interface", inputName)
        a.addNull("output_ring")
        a.add("packets_received", c.get(.received))
        a.add("packets_forwarded", total.forwarded)
        a.add("packets_dropped", total.dropped)
        a.add("non_ip_packets", c.get(.nonIP))
        a.add("data_forward_rate_Mbps", Double(total.bytes &- previousTotal.bytes) * 8 / 1048576 / seconds, digits: 4)
        a.add("data_drop_rate_Mbps", 0, digits: 4)
        a.add("packet_forward_rate_kpps", Double(total.forwarded &- previousTotal.forwarded) / 1000 / seconds, digits: 4)
        a.add("packet_drop_rate_kpps", Double(total.dropped &- previousTotal.dropped) / 1000 / seconds, digits: 4)
        a.add("free_buffer_slots", 0)
        a.add("bytes_received", c.get(.receivedBytes))
        a.add("bytes_forwarded", total.bytes)
        a.add("packets_unparsed", c.get(.unparsed))
        a.add("packets_truncated", c.get(.truncated))
        a.add("amsdu_subframes", c.get(.subframes))
        a.add("decapsulated", counts: c.decapsulatedByKind())
        a.add("unparsed", counts: c.unparsedByReason())
        a.add("fragments", counts: c.fragmentCounts())
        a.add("consumer_protocol_errors", c.get(.badTails))
        if let udp { a.add("udp", object: udp.json()) }
        if let ingress { a.add("ingress", object: ingress()) }
        a.add("final", final)
        out.append(a.rendered)
        previousTotal = total
        previousNanos = nowMono
        return out
    }
}
