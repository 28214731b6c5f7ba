import ArgumentParser
import Foundation
import LBBroker
import LBRing
import LBSys
import LBWorker

/// One stats answer of one lb: its status snapshot, decoded.
struct LBSnapshot {
    var socket: String
    var pid: Int32
    var status: StatusSnapshot
    var taken: Double

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
                out.append(try decode(a))
            } catch let e as AttachError {
                if e.code == EACCES { denied = true }
                errors.append(e.description)
            }
        }
        if out.isEmpty { throw StatsFailure(errors.joined(separator: "; "), notRunning: !denied) }
        return out
    }

    static func decode(_ a: StatsClient.Answer) throws -> LBSnapshot {
        let status: StatusSnapshot
        do {
            status = try JSONDecoder().decode(StatusSnapshot.self, from: Data(a.lines.joined(separator: "\n").utf8))
        } catch {
            throw StatsFailure("\(a.socket): lb's answer does not read as a status snapshot (an lb of another version?): \(error)", notRunning: false)
        }
        return LBSnapshot(socket: a.socket, pid: a.pid, status: status, taken: Double(Sys.monoNanos()) / 1e9)
    }
}

/// Which lb to ask (`lb stats`, `lb check`).
struct AskOptions: ParsableArguments {
    @Option(help: "Only the lb serving this group.")
    var group: String?

    @Option(help: "Directory of lb's control sockets (as given to lb).")
    var runDir: String?

    func fetch() throws -> [LBSnapshot] { try LBSnapshot.fetchAll(runDir: runDir, group: group) }
}

struct StatsFailure: Error, CustomStringConvertible {
    let description: String
    /// true when no lb answered at all (as opposed to: not allowed to ask)
    let notRunning: Bool
    init(_ d: String, notRunning: Bool) { description = d; self.notRunning = notRunning }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the live counters of a running lb (without disturbing it or its consumers).")

    @Flag(help: "Print lb's JSON lines (one per ring, then one for lb, as -o prints them) instead of a table.")
    var json = false

    @Flag(help: "Print every field of every ring after the table.")
    var all = false

    @Flag(help: "Repeat every --interval seconds, with rates.")
    var watch = false

    @Option(help: "Seconds between reports with --watch.", transform: Arguments.positiveSeconds)
    var interval: Double = 1

    @OptionGroup var lb: AskOptions

    func run() throws {
        var previous: [Int32: LBSnapshot] = [:]
        while true {
            let snaps: [LBSnapshot]
            do { snaps = try lb.fetch() } catch {
                try? printError("lb stats: \(error)")
                throw ExitCode(1)
            }
            var text = ""
            for s in snaps {
                let before = previous[s.pid]
                if json {
                    for line in StatusLines.render(s.status, previous: before?.status, final: false) { text += line + "\n" }
                } else {
                    text += StatsText.render(s.status, previous: before?.status, all: all)
                }
                previous[s.pid] = s
            }
            try Sys.write(1, text)
            if !watch { return }
            usleep(UInt32(interval * 1e6))
        }
    }
}
