import ArgumentParser
import Foundation
import LBRing
import LBSys
import LBWorker

/// One stats answer of one lb, parsed.
struct LBSnapshot {
    var socket: String
    var pid: Int32
    var rings: [[String: Any]]
    var lb: [String: Any]
    var taken: Double
    /// lb's lines as it sent them
    var raw: [String]

    /// Asks every lb serving a socket in the run directory (or only `group`'s), once per lb.
    static func fetchAll(runDir: String?, group: String?) throws -> [LBSnapshot] {
        var paths = StatsClient.sockets(runDir: runDir)
        if let group { paths = paths.filter { $0.hasSuffix("/\(group).sock") } }
        guard !paths.isEmpty else {
            let dir = RunDirectory.resolve(runDir)
            if access(dir, R_OK | X_OK) != 0 && errno == EACCES {
                // lb may well run: this user may not look (--ring-group); that is no answer
                throw StatsFailure("\(dir): permission denied: only lb's user and members of its --ring-group may ask lb", notRunning: false)
            }
            throw StatsFailure("no lb control socket\(group.map { " for group '\($0)'" } ?? "") in \(RunDirectory.resolve(runDir))", notRunning: true)
        }
        var out: [LBSnapshot] = []
        var seen: Set<Int32> = []
        var errors: [String] = []
        var denied = false
        for p in paths {
            do {
                let a = try StatsClient.fetch(socket: p)
                if a.pid != 0 && seen.contains(a.pid) { continue }
                seen.insert(a.pid)
                out.append(try parse(a))
            } catch let e as AttachError {
                if e.code == EACCES { denied = true }
                errors.append(e.description)
            }
        }
        if out.isEmpty { throw StatsFailure(errors.joined(separator: "; "), notRunning: !denied) }
        return out
    }

    static func parse(_ a: StatsClient.Answer) throws -> LBSnapshot {
        var rings: [[String: Any]] = []
        var lb: [String: Any] = [:]
        for line in a.lines {
            guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if o["output_ring"] is NSNull { lb = o } else { rings.append(o) }
        }
        return LBSnapshot(socket: a.socket, pid: a.pid, rings: rings, lb: lb, taken: Double(Sys.monoNanos()) / 1e9, raw: a.lines)
    }
}

struct StatsFailure: Error, CustomStringConvertible {
    let description: String
    /// true when no lb answered at all (as opposed to: not allowed to ask)
    let notRunning: Bool
    init(_ d: String, notRunning: Bool) { description = d; self.notRunning = notRunning }
}

extension Dictionary where Key == String, Value == Any {
    func num(_ k: String) -> Double { (self[k] as? NSNumber)?.doubleValue ?? 0 }
    func u64(_ k: String) -> UInt64 { (self[k] as? NSNumber)?.uint64Value ?? 0 }
    func str(_ k: String) -> String { self[k] as? String ?? "" }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the live counters of a running lb (without disturbing it or its consumers).")

    @Flag(help: "Print lb's JSON lines (one per ring, then one for lb) instead of a table.")
    var json = false

    @Flag(help: "Repeat every --interval seconds, with rates.")
    var watch = false

    @Option(help: "Seconds between reports with --watch.")
    var interval: Double = 1

    @Option(help: "Only the lb serving this group.")
    var group: String?

    @Option(help: "Directory of lb's control sockets (as given to lb).")
    var runDir: String?

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
    }

    func run() throws {
        var previous: [Int32: LBSnapshot] = [:]
        while true {
            let snaps: [LBSnapshot]
            do { snaps = try LBSnapshot.fetchAll(runDir: runDir, group: group) } catch {
                try? printError("lb stats: \(error)")
                throw ExitCode(1)
            }
            var text = ""
            for s in snaps {
                if json {
                    for line in s.raw { text += line + "\n" }
                } else {
                    text += table(s, previous: previous[s.pid])
                }
                previous[s.pid] = s
            }
            try Sys.write(1, text)
            if !watch { return }
            usleep(UInt32(interval * 1e6))
        }
    }

    func table(_ s: LBSnapshot, previous: LBSnapshot?) -> String {
        let seconds = previous.map { s.taken - $0.taken } ?? 0
        var t = "lb pid \(s.pid)  input \(s.lb.str("interface"))  up \(Int(s.lb.num("uptime_seconds"))) s  received \(s.lb.u64("packets_received"))  dropped \(s.lb.u64("packets_dropped"))"
        if let f = s.lb["failover_after_seconds"] as? NSNumber { t += "  failover after \(f) s" } else { t += "  failover off" }
        t += "\n"
        let head = ["ring", "consumer", "pid", "forwarded", "dropped", "backlog", "stuck_s", "buckets", "kpps", "drop_kpps"]
        var rows: [[String]] = [head]
        for r in s.rings {
            let name = r.str("interface")
            var kpps = "-", dkpps = "-"
            if let p = previous?.rings.first(where: { $0.str("interface") == name }), seconds > 0 {
                kpps = String(format: "%.1f", Double(r.u64("packets_forwarded") &- p.u64("packets_forwarded")) / seconds / 1000)
                dkpps = String(format: "%.1f", Double(r.u64("packets_dropped") &- p.u64("packets_dropped")) / seconds / 1000)
            }
            var state = r.str("consumer")
            if r["failed_over"] as? Bool == true { state += ",failed-over" }
            rows.append([name, state, (r["consumer_pid"] as? NSNumber).map { "\($0)" } ?? "-", "\(r.u64("packets_forwarded"))",
                         "\(r.u64("packets_dropped"))", "\(r.u64("backlog"))", String(format: "%.1f", r.num("consumer_stuck_seconds")),
                         "\(r.u64("buckets"))", kpps, dkpps])
        }
        var widths = head.map(\.count)
        for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        for row in rows {
            t += row.enumerated().map { i, c in i == 0 || i == 1 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                                                        : String(repeating: " ", count: widths[i] - c.count) + c }
                .joined(separator: "  ") + "\n"
        }
        return t
    }
}
