import ArgumentParser
import Foundation

/// lb's version: the ring protocol's (LB_RING_VERSION) major, then the feature level.
let lbVersion = "1.16.0"

@main
struct LB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lb",
        abstract: "Flow load balancer and packet broker: splits traffic over analyzer workers, flow by flow.",
        discussion: """
            lb -i pcap:trace.pcap -p zeek:4        split a capture over 4 consumers (lb cat zeek:K ...)
            lb cat zeek:3 -w part3.pcap            write what ring zeek:3 gets as pcap
            lb exec -- tcpdump -i lb:zeek:3        a pcap program reads ring zeek:3 itself (liblbpcap)
            """,
        version: lbVersion,
        subcommands: [Run.self, Cat.self, Exec.self, Gen.self, FlowLog.self, Tap.self, Stats.self, Check.self, Shunt.self, CheckConfig.self],
        defaultSubcommand: Run.self)

    /// `--config FILE` is replaced by the file's options before the command line is parsed
    /// (ConfigFile.swift); an error that comes from the file names its line.
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        let expanded: (arguments: [String], file: ConfigFile)?
        do { expanded = try ConfigFile.expand(args) } catch {
            try? printError("lb: \(error)")
            Foundation.exit(64)
        }
        guard let expanded else {
            Self.main(args)
            return
        }
        do {
            var command = try parseAsRoot(expanded.arguments)
            try command.run()
        } catch {
            let message = Self.message(for: error)
            if Self.exitCode(for: error) == .validationFailure || message.hasPrefix("Error:") || message.contains("--"),
               let e = expanded.file.origin(of: message) {
                try? printError("lb: \(expanded.file.path):\(e.line): '\(e.key)': \(message)")
                Foundation.exit(Self.exitCode(for: error).rawValue)
            }
            Self.exit(withError: error)
        }
    }
}
