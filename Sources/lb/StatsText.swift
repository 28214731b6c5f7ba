import Foundation
import LBBroker

/// `lb stats` as text: a headline, every field of lb's status as `name value` pairs, a table of
/// the rings, and with `--all` every field of every ring. Rendered from the same snapshot as the
/// JSON lines and Prometheus (the parity test holds all of them to the snapshot's fields).
enum StatsText {
    static func render(_ s: StatusSnapshot, previous: StatusSnapshot?, all: Bool) -> String {
        let l = s.lb
        var t = "lb pid \(l.pid)  input \(l.interface)  up \(Int(l.uptimeSeconds)) s  received \(l.packetsReceived)  forwarded \(l.packetsForwarded)  dropped \(l.packetsDropped)"
        t += l.failoverAfterSeconds.map { "  failover after \(fmt($0)) s" } ?? "  failover off"
        t += "\n" + pairs(StatusEncoder.encode(l), indent: "  ")
        let seconds = previous.map { s.ts - $0.ts } ?? 0
        let head = ["ring", "consumer", "pid", "forwarded", "dropped", "backlog", "stuck_s", "buckets", "kpps", "drop_kpps"]
        var rows: [[String]] = [head]
        for r in s.rings {
            var kpps = "-", dkpps = "-"
            if let p = previous?.rings.first(where: { $0.interface == r.interface }), seconds > 0 {
                kpps = String(format: "%.1f", Double(r.packetsForwarded &- p.packetsForwarded) / seconds / 1000)
                dkpps = String(format: "%.1f", Double(r.packetsDropped &- p.packetsDropped) / seconds / 1000)
            }
            let state = r.consumer + (r.failedOver ? ",failed-over" : "")
            rows.append([r.interface, state, r.consumerPid.map(String.init) ?? "-", "\(r.packetsForwarded)", "\(r.packetsDropped)",
                         "\(r.backlog)", fmt(r.consumerStuckSeconds, 1), "\(r.buckets)", kpps, dkpps])
        }
        var widths = head.map(\.count)
        for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        for row in rows {
            t += row.enumerated().map { i, c in
                i < 2 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - c.count) + c
            }.joined(separator: "  ") + "\n"
        }
        if all {
            for r in s.rings { t += r.interface + "\n" + pairs(StatusEncoder.encode(r), indent: "  ") }
        }
        return t
    }

    /// Every leaf as `path value`, a few to a line (at most 100 columns).
    static func pairs(_ v: StatusValue, indent: String) -> String {
        var out = "", line = indent
        for (path, value) in v.leaves() {
            let item = path.joined(separator: ".") + " " + text(value)
            if line.count > indent.count && line.count + 2 + item.count > 100 {
                out += line + "\n"
                line = indent
            }
            line += (line.count > indent.count ? "  " : "") + item
        }
        if line.count > indent.count { out += line + "\n" }
        return out
    }

    static func text(_ v: StatusValue) -> String {
        switch v {
        case .null: "-"
        case .string(let s): s
        case .double(let d): fmt(d, 3)
        default: v.json
        }
    }

    static func fmt(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }
}
