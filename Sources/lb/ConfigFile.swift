import ArgumentParser
import Foundation
import Yams

/// `lb --config FILE` (docs/configuration.md): a YAML mapping whose keys are the long options of
/// lb's main command. It is turned into arguments and parsed by the same command as the command
/// line, so the two are equivalent by construction: a scalar is `--key value`, a list repeats the
/// option, `true` is a flag and `false` leaves it out. The file's arguments come first; the
/// command line's follow (a single-valued option given in both: the command line's wins; list
/// options add up).
struct ConfigFile {
    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    /// One key of the file: its name, line, and the arguments it stands for.
    struct Entry {
        let key: String
        let line: Int
        let arguments: [String]
    }

    let path: String
    let entries: [Entry]

    var arguments: [String] { entries.flatMap(\.arguments) }

    /// The long options of lb's main command (from its help), for unknown keys.
    static let options: [String] = {
        let help = Run.helpMessage(columns: 10_000)
        var names: [String] = []
        var rest = Substring(help)
        while let r = rest.range(of: "--") {
            let name = rest[r.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "-" }
            if !name.isEmpty && !names.contains(String(name)) { names.append(String(name)) }
            rest = rest[r.upperBound...]
        }
        return names.filter { !["help", "version", "config", "experimental-dump-help"].contains($0) }
    }()

    init(path: String) throws(Problem) {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw Problem(description: "\(path): cannot read it")
        }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw Problem(description: "\(path): not YAML: \(error)")
        }
        guard let node else { entries = []; return }
        guard let mapping = node.mapping else {
            throw Problem(description: "\(path):\(Self.line(node)): the file must be a mapping of option names to values (input: eth1, ...)")
        }
        var out: [Entry] = []
        for (k, v) in mapping {
            let line = Self.line(k)
            guard let key = k.scalar?.string else { throw Problem(description: "\(path):\(line): a key must be an option name") }
            guard Self.options.contains(key) else {
                let near = Self.options.min { Self.distance($0, key) < Self.distance($1, key) }
                let hint = near.map { Self.distance($0, key) <= 3 ? " (did you mean '\($0)'?)" : "" } ?? ""
                throw Problem(description: "\(path):\(line): '\(key)' is not an option of lb\(hint); the keys are lb's long options, as `lb run --help` lists them")
            }
            out.append(Entry(key: key, line: line, arguments: try Self.arguments(key, v, path: path, line: line)))
        }
        entries = out
    }

    static func line(_ n: Node) -> Int { (n.mark?.line ?? 0) + (n.mark == nil ? 0 : 0) }

    static func arguments(_ key: String, _ v: Node, path: String, line: Int) throws(Problem) -> [String] {
        switch v {
        case .scalar(let s):
            if s.style == .plain {
                if ["true", "True", "TRUE", "yes", "on"].contains(s.string) { return ["--" + key] }
                if ["false", "False", "FALSE", "no", "off"].contains(s.string) && !takesValue(key) { return [] }
            }
            return ["--" + key, s.string]
        case .sequence(let seq):
            var out: [String] = []
            for item in seq {
                guard let s = item.scalar?.string else {
                    throw Problem(description: "\(path):\(Self.line(item)): '\(key)': a list item must be a single value")
                }
                out += ["--" + key, s]
            }
            return out
        default:
            throw Problem(description: "\(path):\(line): '\(key)': a value or a list of values, not a mapping")
        }
    }

    /// Whether `--key` takes a value (then "off"/"no" are values, e.g. `failover: off`).
    static func takesValue(_ key: String) -> Bool {
        let help = Run.helpMessage(columns: 10_000)
        return help.contains("--\(key) <")
    }

    /// Edit distance, for suggestions.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var prev = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let cur = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                prev = cur
            }
        }
        return row[b.count]
    }

    /// The file's key and line that an error message of the parser names, if any.
    func origin(of message: String) -> Entry? {
        entries.first { message.contains("'--\($0.key)") || message.contains("--\($0.key) ") || message.contains("--\($0.key):") || message.hasSuffix("--\($0.key)") }
    }

    /// `lb ... --config FILE ...`: the arguments with the file's in place of `--config FILE`
    /// (nil when there is no --config). Only for lb's main command (no subcommand name first).
    static func expand(_ args: [String]) throws(Problem) -> (arguments: [String], file: ConfigFile)? {
        guard let i = args.firstIndex(where: { $0 == "--config" || $0.hasPrefix("--config=") }) else { return nil }
        let sub = LB.configuration.subcommands.map { $0.configuration.commandName ?? "" }
        if let first = args.first, sub.contains(first), first != "run" { return nil }
        var rest = args
        let path: String
        if args[i].hasPrefix("--config=") {
            path = String(args[i].dropFirst(9))
            rest.remove(at: i)
        } else {
            guard i + 1 < args.count else { throw Problem(description: "--config needs a file") }
            path = args[i + 1]
            rest.removeSubrange(i...(i + 1))
        }
        let file = try ConfigFile(path: path)
        var out = rest
        let at = out.first == "run" ? 1 : 0
        out.insert(contentsOf: file.arguments, at: at)
        return (out, file)
    }
}

/// `lb check-config FILE [options]`: whether lb would start with this file (and these options),
/// without starting anything; prints the equivalent command line.
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration file (lb --config FILE) without starting lb; print the equivalent command line.",
        discussion: "Exit 0 when lb would accept it, 64 (with the file, line and reason) when not. Opens no interface, socket or ring.")

    @Argument(help: "The YAML file (keys: lb's long options).")
    var file: String

    @Argument(parsing: .captureForPassthrough, help: "More options, as they would follow --config FILE.")
    var options: [String] = []

    func run() throws {
        let cfg: ConfigFile
        do { cfg = try ConfigFile(path: file) } catch {
            try? printError("lb check-config: \(error)")
            throw ExitCode(64)
        }
        let args = cfg.arguments + options
        do {
            let run = try Run.parse(args)
            _ = try run.makeConfig()
            _ = try run.forwardGroups()
        } catch {
            let message = Run.message(for: error)
            if let e = cfg.origin(of: message) {
                try? printError("lb check-config: \(file):\(e.line): '\(e.key)': \(message)")
            } else {
                try? printError("lb check-config: \(message)")
            }
            throw ExitCode(64)
        }
        print("lb \\")
        var lines: [String] = []
        var i = 0
        while i < args.count {
            var line = "    " + Self.quote(args[i])
            if i + 1 < args.count && !args[i + 1].hasPrefix("--") {
                line += " " + Self.quote(args[i + 1])
                i += 1
            }
            lines.append(line)
            i += 1
        }
        print(lines.joined(separator: " \\\n"))
    }

    static func quote(_ s: String) -> String {
        let safe = s.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=,@%+".contains($0) }
        return safe && !s.isEmpty ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
