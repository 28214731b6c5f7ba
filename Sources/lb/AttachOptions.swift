import ArgumentParser
import Glibc
import LBRing
import LBWorker
import Synchronization

/// Set by SIGINT/SIGTERM in a ring consumer subcommand (one runs per process).
let consumerStop = Atomic<UInt32>(0)

/// The options every ring consumer subcommand shares (`lb cat`, `lb tap`, `lb flowlog`).
struct AttachOptions: ParsableArguments {
    @Option(help: "Wait up to SECS seconds for lb to serve the ring (0: forever).", transform: Arguments.seconds)
    var wait: Double = 60

    @Option(help: "Directory of lb's control sockets (as given to lb).")
    var runDir: String?

    /// How long `RingConsumer.attach` may wait for lb (nil: forever).
    var waitNanos: UInt64? { wait > 0 ? UInt64(wait * 1e9) : nil }

    /// SIGINT and SIGTERM set `consumerStop`; a reader that went away (SIGPIPE) is an error
    /// on write, not a kill.
    static func stopOnSignals() {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGINT) { _ in consumerStop.store(1, ordering: .relaxed) }
        signal(SIGTERM) { _ in consumerStop.store(1, ordering: .relaxed) }
    }

    /// Attaches to `name` (as a tap with `tap`); on failure says why as "lb TOOL: ..." and exits 1.
    func attach(_ name: RingName, tool: String, tap: Bool = false, shuntReports: Bool = false) throws -> RingConsumer {
        do {
            return try RingConsumer.attach(name, runDir: runDir, waitNanos: waitNanos, tap: tap, shuntReports: shuntReports)
        } catch {
            try? printError("lb \(tool): \(error)")
            throw ExitCode(1)
        }
    }
}
