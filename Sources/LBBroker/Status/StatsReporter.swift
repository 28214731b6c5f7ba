import LBSys

/// The `-o` stats lines: one JSON object per ring, then one for lb, rendered from the status
/// snapshot. netmap lb's fields come first with their names (`interface`, `output_ring`,
/// `packets_forwarded`, `packets_dropped`, the rates ...), then every field of the snapshot.
/// Rates cover the time since the previous report.
final class StatsReporter {
    let operations: Operations
    var previous: StatusSnapshot? = nil
    /// packets lost before lb read them (hardware and socket drops), for the rings' info block
    var upstreamDrops: (() -> UInt64)? = nil

    init(operations: Operations) {
        self.operations = operations
        previous = operations.snapshot()       // the first report's rates cover the time since start
    }

    /// The lines of one report (no trailing newline on each).
    func lines(final: Bool) -> [String] {
        let s = operations.snapshot()
        defer { previous = s }
        return StatusLines.render(s, previous: previous, final: final)
    }
}

/// Renders a snapshot as netmap lb's JSON lines (also `lb stats --json`).
public enum StatusLines {
    /// One line per ring, then lb's; rates against `previous` (0 without one).
    public static func render(_ s: StatusSnapshot, previous: StatusSnapshot?, final: Bool) -> [String] {
        let seconds = previous.map { max(s.ts - $0.ts, 1e-9) }
        /// netmap's rates of one line: (bytes, forwarded, dropped) now and before
        func rates(_ now: (UInt64, UInt64, UInt64), _ before: (UInt64, UInt64, UInt64)?, last: String) -> [(String, StatusValue)] {
            func rate(_ n: UInt64, _ b: UInt64?, _ scale: Double) -> StatusValue {
                guard let seconds, let b else { return .double(0) }
                return .double((Double(n &- b) * scale / seconds * 10000).rounded() / 10000)
            }
            return [("data_forward_rate_Mbps", rate(now.0, before?.0, 8 / 1048576)), ("data_drop_rate_Mbps", .double(0)),
                    ("packet_forward_rate_kpps", rate(now.1, before?.1, 1 / 1000)),
                    ("packet_drop_rate_kpps", rate(now.2, before?.2, 1 / 1000)), (last, .int(0))]
        }
        var out: [String] = []
        for (i, r) in s.rings.enumerated() {
            let p = previous?.rings.indices.contains(i) == true && previous!.rings[i].interface == r.interface ? previous!.rings[i] : nil
            let before = p.map { ($0.bytesForwarded, $0.packetsForwarded, $0.packetsDropped) }
            out.append(line(ts: s.ts, StatusEncoder.encode(r), after: "packets_dropped", final: nil,
                            insert: rates((r.bytesForwarded, r.packetsForwarded, r.packetsDropped), before, last: "overflow_queue_size")))
        }
        let l = s.lb
        var lbLine = StatusEncoder.encode(l)
        // netmap lb's aggregate line has output_ring null, right after interface
        if case .object(var m) = lbLine { m.insert(("output_ring", .null), at: 1); lbLine = .object(m) }
        let before = previous.map { ($0.lb.bytesForwarded, $0.lb.packetsForwarded, $0.lb.packetsDropped) }
        out.append(line(ts: s.ts, lbLine, after: "non_ip_packets", final: final,
                        insert: rates((l.bytesForwarded, l.packetsForwarded, l.packetsDropped), before, last: "free_buffer_slots")))
        return out
    }

    static func line(ts: Double, _ v: StatusValue, after: String, final: Bool?, insert: [(String, StatusValue)]) -> String {
        guard case .object(var m) = v else { return v.json }
        let at = (m.firstIndex { $0.0 == after } ?? (m.count - 1)) + 1
        m.insert(contentsOf: insert, at: at)
        m.insert(("ts", .double(ts)), at: 0)
        if let final { m.append(("final", .bool(final))) }
        return StatusValue.object(m).json
    }
}
