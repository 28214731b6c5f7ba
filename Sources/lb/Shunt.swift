import ArgumentParser
import Foundation
import LBBroker
import LBSys
import LBWorker

/// `lb shunt add|del|list GROUP ...`: asks a running lb to stop sending a flow to a group's
/// workers (docs/shunting.md).
struct Shunt: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop sending a flow to a group's workers (shunt), undo it, or list the shunted flows.",
        subcommands: [Add.self, Del.self, List.self])

    /// The flow of a request, as options.
    struct Flow: ParsableArguments {
        @Option(help: "Protocol: tcp, udp, icmp, icmp6, sctp or a number.")
        var proto: String = "tcp"
        @Option(help: "Source address (IPv4 or IPv6).")
        var src: String
        @Option(help: "Source port (0 for protocols without ports).")
        var sport: UInt16 = 0
        @Option(help: "Destination address.")
        var dst: String
        @Option(help: "Destination port.")
        var dport: UInt16 = 0
        @Option(help: "The VLAN id, when lb hashes on it (--hash-vlan).")
        var vlan: UInt16?
        @Option(help: "The VNI, when lb hashes on it (--hash-vni).")
        var vni: UInt32?

        var fields: String {
            var s = "proto=\(proto) src=\(src) sport=\(sport) dst=\(dst) dport=\(dport)"
            if let vlan { s += " vlan=\(vlan)" }
            if let vni { s += " vni=\(vni)" }
            return s
        }
    }

    static func send(runDir: String?, group: String, _ line: String) throws -> [String] {
        do {
            return try StatsClient.shunt(runDir: runDir, group: group, line: line).lines
        } catch {
            try? printError("lb shunt: \(error)")
            throw ExitCode(1)
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop sending a flow (both directions unless --forward-only) to GROUP.")
        @Argument(help: "The group (as in -p NAME:N).") var group: String
        @OptionGroup var flow: Flow
        @Flag(help: "Only the direction from --src to --dst (as Zeek's shunt_flow and dumbno do).")
        var forwardOnly = false
        @Option(help: "End the shunt after this many seconds without a shunted packet (0: never).")
        var idle: Double = 0
        @Option(help: "End the shunt this many seconds after it was added (0: never).")
        var hard: Double = 0
        @Option(help: "Directory of lb's control sockets (as given to lb).") var runDir: String?

        func run() throws {
            let line = "add \(flow.fields) dir=\(forwardOnly ? "forward" : "both") idle=\(idle) hard=\(hard)"
            let answer = try Shunt.send(runDir: runDir, group: group, line)
            print(answer.first ?? "added")
        }
    }

    struct Del: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a shunted flow to GROUP again; prints its final counts.")
        @Argument(help: "The group.") var group: String
        @OptionGroup var flow: Flow
        @Option(help: "Directory of lb's control sockets (as given to lb).") var runDir: String?

        func run() throws {
            let answer = try Shunt.send(runDir: runDir, group: group, "del \(flow.fields)")
            for line in answer { print(line) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The flows shunted for GROUP, with what each has stopped.")
        @Argument(help: "The group.") var group: String
        @Flag(help: "One JSON object per flow.") var json = false
        @Option(help: "Directory of lb's control sockets (as given to lb).") var runDir: String?

        func run() throws {
            let answer = try Shunt.send(runDir: runDir, group: group, "list")
            let entries = answer.dropFirst()
            if json {
                for line in entries { print(line) }
                return
            }
            print("proto  a  ->  b  directions  packets a->b / b->a  bytes a->b / b->a  idle/hard s")
            for line in entries {
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
                func v(_ k: String) -> String { o[k].map { "\($0)" } ?? "-" }
                print("\(v("proto"))  \(v("a")):\(v("a_port")) -> \(v("b")):\(v("b_port"))  \(v("directions"))"
                      + "  \(v("packets_a_to_b"))/\(v("packets_b_to_a"))  \(v("bytes_a_to_b"))/\(v("bytes_b_to_a"))"
                      + "  \(v("idle_seconds"))/\(v("hard_seconds"))")
            }
        }
    }
}
