import Foundation

/// A Zeek TSV log (conn.log): its #fields and records.
struct ZeekLog {
    var fields: [String] = []
    var records: [[String: String]] = []

    init(text: String) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("#fields") {
                fields = line.split(separator: "\t", omittingEmptySubsequences: false).dropFirst().map(String.init)
            } else if !line.hasPrefix("#") && !fields.isEmpty {
                let v = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                records.append(Dictionary(zip(fields, v), uniquingKeysWith: { a, _ in a }))
            }
        }
    }

    init(path: String) throws {
        self.init(text: try String(contentsOfFile: path, encoding: .utf8))
    }

    var hasIDs: Bool { fields.contains("id.orig_h") }

    static func flowKey(_ r: [String: String]) -> String {
        "\(r["id.orig_h"] ?? "")|\(r["id.orig_p"] ?? "")|\(r["id.resp_h"] ?? "")|\(r["id.resp_p"] ?? "")|\(r["proto"] ?? "")"
    }
    static func reverseKey(_ r: [String: String]) -> String {
        "\(r["id.resp_h"] ?? "")|\(r["id.resp_p"] ?? "")|\(r["id.orig_h"] ?? "")|\(r["id.orig_p"] ?? "")|\(r["proto"] ?? "")"
    }
}

/// The per-case exceptions listed in docs/flowlog.md (table rows "| `case` | reason |" under
/// the heading "Corpus exceptions").
enum FlowExceptions {
    static func load() throws -> Set<String> {
        let text = try String(contentsOfFile: Corpus.repoRoot + "/docs/flowlog.md", encoding: .utf8)
        guard let start = text.range(of: "## Corpus exceptions") else { return [] }
        var names: Set<String> = []
        for line in text[start.upperBound...].split(separator: "\n") {
            if line.hasPrefix("## ") { break }
            guard line.hasPrefix("| `") else { continue }
            let rest = line.dropFirst(3)
            if let end = rest.firstIndex(of: "`") { names.insert(String(rest[..<end])) }
        }
        return names
    }
}
