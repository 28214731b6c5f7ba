import ArgumentParser
import LBRing

/// The options every ring consumer subcommand shares (`lb cat`, `lb tap`, `lb flowlog`).
struct AttachOptions: ParsableArguments {
    @Option(help: "Wait up to SECS seconds for lb to serve the ring (0: forever).")
    var wait: Double = 60

    @Option(help: "Directory of lb's control sockets (as given to lb).")
    var runDir: String?

    /// How long `RingConsumer.attach` may wait for lb (nil: forever).
    var waitNanos: UInt64? { wait > 0 ? UInt64(wait * 1e9) : nil }

    /// `NAME:K`, or a usage error that says what is wrong with it.
    static func ringName(_ text: String) throws -> RingName {
        do { return try RingName(parsing: text) } catch { throw ValidationError("\(error)") }
    }
}
