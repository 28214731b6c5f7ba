import ArgumentParser
import Foundation
import LBBroker
import LBSys

/// `lb check`: a Nagios/Icinga plugin. Judges every ring on its own — never an average over
/// workers — so one stuck worker among running ones is CRITICAL, named.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Nagios/Icinga check of a running lb: OK, WARNING, CRITICAL or UNKNOWN (exit 0, 1, 2, 3) with perfdata.",
        discussion: """
            CRITICAL: lb is not running; a ring has no consumer; a consumer has had packets waiting and
            released none for --stuck-critical seconds; a ring drops more than --drop-critical percent.
            WARNING: the same with the --*-warning thresholds, and the worker's own loss estimate.
            Drop rates are measured over --interval seconds (two reads of lb's counters).
            """)

    @Option(help: "Only the lb serving this group.")
    var group: String?

    @Option(help: "Directory of lb's control sockets (as given to lb).")
    var runDir: String?

    @Option(help: "Seconds between the two reads the drop rates are measured over (0: since lb started).")
    var interval: Double = 1

    @Option(name: [.customLong("drop-warning")], help: "WARNING when a ring drops more than PCT percent of its packets.")
    var dropWarning: Double = 0.1

    @Option(name: [.customLong("drop-critical")], help: "CRITICAL when a ring drops more than PCT percent of its packets.")
    var dropCritical: Double = 1

    @Option(name: [.customLong("stuck-warning")], help: "WARNING when a consumer has had packets waiting and released none for SECS.")
    var stuckWarning: Double = 2

    @Option(name: [.customLong("stuck-critical")], help: "CRITICAL when a consumer has had packets waiting and released none for SECS.")
    var stuckCritical: Double = 5

    @Option(name: [.customLong("loss-warning")], help: "WARNING when a worker reports more than PCT percent loss (gaps per acks).")
    var lossWarning: Double = 1

    @Option(name: [.customLong("loss-critical")], help: "CRITICAL when a worker reports more than PCT percent loss.")
    var lossCritical: Double = 5

    enum Level: Int32, Comparable {
        case ok = 0, warning = 1, critical = 2, unknown = 3
        static func < (a: Level, b: Level) -> Bool { a.rank < b.rank }
        var rank: Int { self == .unknown ? 1 : (self == .ok ? 0 : Int(rawValue) + 1) }   // OK < UNKNOWN < WARNING < CRITICAL
        var word: String { ["OK", "WARNING", "CRITICAL", "UNKNOWN"][Int(rawValue)] }
    }

    func run() throws {
        let (level, message, perf) = evaluate()
        try? Sys.write(1, "LB \(level.word) - \(message)\(perf.isEmpty ? "" : " | " + perf.joined(separator: " "))\n")
        throw ExitCode(level.rawValue)
    }

    func evaluate() -> (Level, String, [String]) {
        let first: [LBSnapshot]
        do { first = try LBSnapshot.fetchAll(runDir: runDir, group: group) } catch let e as StatsFailure {
            return (e.notRunning ? .critical : .unknown, e.notRunning ? "lb is not running: \(e)" : "\(e)", [])
        } catch {
            return (.unknown, "\(error)", [])
        }
        var second = first
        if interval > 0 {
            usleep(UInt32(interval * 1e6))
            do { second = try LBSnapshot.fetchAll(runDir: runDir, group: group) } catch let e as StatsFailure {
                return (e.notRunning ? .critical : .unknown, "lb went away during the check: \(e)", [])
            } catch {
                return (.unknown, "\(error)", [])
            }
        }
        var worst = Level.ok
        var problems: [(Level, String)] = []
        var perf: [String] = []
        var ringCount = 0
        for s in second {
            let before = first.first { $0.pid == s.pid }
            for r in s.status.rings {
                ringCount += 1
                let name = r.interface
                let b = interval > 0 ? before?.status.rings.first { $0.interface == name } : nil
                let fwd = r.packetsForwarded &- (b?.packetsForwarded ?? 0)
                let drop = r.packetsDropped &- (b?.packetsDropped ?? 0)
                let dropPct = fwd &+ drop == 0 ? 0 : Double(drop) * 100 / Double(fwd &+ drop)
                let stuck = r.consumerStuckSeconds
                let acks = r.workerLossAcks, gaps = r.workerLossGaps
                // a report that cannot be right (more gaps than acks, more processed than
                // forwarded, a time in the future) is written by the worker, not measured:
                // say so instead of judging by it
                let suspect = r.workerReportSuspect
                let lossPct = suspect ? 0 : r.workerLossPercent ?? 0
                let failed = r.failedOver ? " (its flows failed over)" : ""
                let pid = r.consumerPid.map(String.init) ?? "?"
                var level = Level.ok
                var why: [String] = []
                func raise(_ l: Level, _ s: String) { level = max(level, l); why.append(s) }
                if !r.attached {
                    raise(.critical, "no consumer for \(Int(r.consumerDetachedSeconds)) s\(failed)")
                } else if stuck >= stuckCritical {
                    raise(.critical, "consumer pid \(pid) stuck for \(fmt(stuck)) s with \(r.backlog) packets waiting\(failed)")
                } else if stuck >= stuckWarning {
                    raise(.warning, "consumer pid \(pid) stuck for \(fmt(stuck)) s with \(r.backlog) packets waiting")
                }
                if dropPct > dropCritical { raise(.critical, "dropping \(fmt(dropPct))% of packets") }
                else if dropPct > dropWarning { raise(.warning, "dropping \(fmt(dropPct))% of packets") }
                if suspect { raise(.warning, "worker pid \(r.workerReportPid.map(String.init) ?? "?") reports figures that cannot be right (\(gaps) gaps of \(acks) acks)") }
                if lossPct > lossCritical { raise(.critical, "worker reports \(fmt(lossPct))% loss") }
                else if lossPct > lossWarning { raise(.warning, "worker reports \(fmt(lossPct))% loss") }
                if level != .ok { problems.append((level, "\(name) \(why.joined(separator: ", "))")) }
                worst = max(worst, level)
                perf.append("'\(name) backlog'=\(r.backlog);;;0;\(r.slots)")
                perf.append("'\(name) drop'=\(fmt(dropPct))%;\(fmt(dropWarning));\(fmt(dropCritical));0;100")
                perf.append("'\(name) stuck'=\(fmt(stuck))s;\(fmt(stuckWarning));\(fmt(stuckCritical));0;")
                perf.append("'\(name) forwarded'=\(r.packetsForwarded)c")
                perf.append("'\(name) dropped'=\(r.packetsDropped)c")
            }
        }
        if ringCount == 0 { return (.unknown, "lb answered but reported no rings", perf) }
        problems.sort { $0.0 > $1.0 }
        let okCount = ringCount - problems.count
        let message = problems.isEmpty
            ? "\(ringCount) rings OK"
            : problems.map(\.1).joined(separator: "; ") + "; \(okCount) of \(ringCount) rings OK"
        return (worst, message, perf)
    }

    func fmt(_ v: Double) -> String { String(format: "%.2f", v) }
}
