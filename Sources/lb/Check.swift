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
            released none for the critical --stuck seconds; a ring drops more than the critical --drop
            percentage; a worker reports more than the critical --loss percentage.
            WARNING: the same with the warning thresholds. Each threshold is WARN,CRIT.
            Drop rates are measured over --interval seconds (two reads of lb's counters).
            """)

    @OptionGroup var lb: AskOptions

    @Option(help: "Seconds between the two reads the drop rates are measured over (0: since lb started).", transform: Arguments.seconds)
    var interval: Double = 1

    @Option(help: "WARN,CRIT: percent of its packets a ring drops.")
    var drop = Levels(warning: 0.1, critical: 1)

    @Option(help: "WARN,CRIT: seconds a consumer has had packets waiting and released none.")
    var stuck = Levels(warning: 2, critical: 5)

    @Option(help: "WARN,CRIT: percent loss a worker reports (gaps per acks).")
    var loss = Levels(warning: 1, critical: 5)

    /// A warning and a critical threshold, `WARN,CRIT`.
    struct Levels: ExpressibleByArgument {
        var warning: Double, critical: Double
        init(warning: Double, critical: Double) { self.warning = warning; self.critical = critical }
        init?(argument: String) {
            let f = argument.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
            guard f.count == 2, let w = f[0], let c = f[1], w >= 0, c >= w else { return nil }
            self.init(warning: w, critical: c)
        }
        var defaultValueDescription: String { "\(warning.formatted()),\(critical.formatted())" }
        /// the level `value` reaches (ok below the warning threshold)
        func level(_ value: Double, atLeast: Bool = false) -> Level {
            let over = { (t: Double) in atLeast ? value >= t : value > t }
            return over(critical) ? .critical : over(warning) ? .warning : .ok
        }
    }

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
        do { first = try lb.fetch() } catch let e as StatsFailure {
            return (e.notRunning ? .critical : .unknown, e.notRunning ? "lb is not running: \(e)" : "\(e)", [])
        } catch {
            return (.unknown, "\(error)", [])
        }
        var second = first
        if interval > 0 {
            usleep(UInt32(interval * 1e6))
            do { second = try lb.fetch() } catch let e as StatsFailure {
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
                let lost = r.packetsDropped &- (b?.packetsDropped ?? 0)
                let dropPct = fwd &+ lost == 0 ? 0 : Double(lost) * 100 / Double(fwd &+ lost)
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
                let stuckLevel = stuck.level(r.consumerStuckSeconds, atLeast: true)
                if !r.attached {
                    raise(.critical, "no consumer for \(Int(r.consumerDetachedSeconds)) s\(failed)")
                } else if stuckLevel != .ok {
                    raise(stuckLevel, "consumer pid \(pid) stuck for \(fmt(r.consumerStuckSeconds)) s with \(r.backlog) packets waiting\(stuckLevel == .critical ? failed : "")")
                }
                let dropLevel = drop.level(dropPct)
                if dropLevel != .ok { raise(dropLevel, "dropping \(fmt(dropPct))% of packets") }
                if suspect { raise(.warning, "worker pid \(r.workerReportPid.map(String.init) ?? "?") reports figures that cannot be right (\(gaps) gaps of \(acks) acks)") }
                let lossLevel = loss.level(lossPct)
                if lossLevel != .ok { raise(lossLevel, "worker reports \(fmt(lossPct))% loss") }
                if level != .ok { problems.append((level, "\(name) \(why.joined(separator: ", "))")) }
                worst = max(worst, level)
                perf.append("'\(name) backlog'=\(r.backlog);;;0;\(r.slots)")
                perf.append("'\(name) drop'=\(fmt(dropPct))%;\(fmt(drop.warning));\(fmt(drop.critical));0;100")
                perf.append("'\(name) stuck'=\(fmt(r.consumerStuckSeconds))s;\(fmt(stuck.warning));\(fmt(stuck.critical));0;")
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
