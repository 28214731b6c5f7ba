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
        func rate(_ now: UInt64, _ before: UInt64?, _ scale: Double) -> StatusValue {
            guard let seconds, let before else { return .double(0) }
            return .double((Double(now &- before) * scale / seconds * 10000).rounded() / 10000)
        }
        var out: [String] = []
        for (i, r) in s.rings.enumerated() {
            let p = previous?.rings.indices.contains(i) == true && previous!.rings[i].interface == r.interface ? previous!.rings[i] : nil
            let rates: [(String, StatusValue)] = [
                ("data_forward_rate_Mbps", rate(r.bytesForwarded, p?.bytesForwarded, 8 / 1048576)),
                ("data_drop_rate_Mbps", .double(0)),
                ("packet_forward_rate_kpps", rate(r.packetsForwarded, p?.packetsForwarded, 1 / 1000)),
                ("packet_drop_rate_kpps", rate(r.packetsDropped, p?.packetsDropped, 1 / 1000)),
                ("overflow_queue_size", .int(0)),
            ]
            out.append(line(ts: s.ts, StatusEncoder.encode(r), insert: rates, after: "packets_dropped", final: nil))
        }
        let l = s.lb, p = previous?.lb
        let rates: [(String, StatusValue)] = [
            ("data_forward_rate_Mbps", rate(l.bytesForwarded, p?.bytesForwarded, 8 / 1048576)),
            ("data_drop_rate_Mbps", .double(0)),
            ("packet_forward_rate_kpps", rate(l.packetsForwarded, p?.packetsForwarded, 1 / 1000)),
            ("packet_drop_rate_kpps", rate(l.packetsDropped, p?.packetsDropped, 1 / 1000)),
            ("free_buffer_slots", .int(0)),
        ]
        var lbLine = StatusEncoder.encode(l)
        // netmap lb's aggregate line has output_ring null, right after interface
        if case .object(var m) = lbLine { m.insert(("output_ring", .null), at: 1); lbLine = .object(m) }
        out.append(line(ts: s.ts, lbLine, insert: rates, after: "non_ip_packets", final: final))
        return out
    }

    static func line(ts: Double, _ v: StatusValue, insert: [(String, StatusValue)], after: String, final: Bool?) -> String {
        guard case .object(var m) = v else { return v.json }
        let at = (m.firstIndex { $0.0 == after } ?? (m.count - 1)) + 1
        m.insert(contentsOf: insert, at: at)
        m.insert(("ts", .double(ts)), at: 0)
        if let final { m.append(("final", .bool(final))) }
        return StatusValue.object(m).json
    }
}
