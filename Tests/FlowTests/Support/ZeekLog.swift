import Foundation

/// A Zeek TSV log (conn.log): its #fields and records.
struct ZeekLog {
    var fields: [String] = []
    var records: [[String: String]] = []

    init(text: String) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("#fields") {
                fields = line.split(separator: "\t", omittingEmptySubsequences: false).dropFirst().map(String.init)
            } else if !line.hasPrefix("#") && fields.isEmpty {
                // zeek-cut output (some tests log only a few columns): a plain header line
                fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            } else if !line.hasPrefix("#") {
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

/// The corpus cases that are not comparable, listed in README.md under the heading "Corpus
/// cases flowlog is not compared on" as lines "- `case`: reason".
enum NotComparable {
    static func load() throws -> [String: String] {
        let text = try String(contentsOfFile: Corpus.repoRoot + "/README.md", encoding: .utf8)
        guard let start = text.range(of: "Corpus cases flowlog is not compared on") else {
            throw TestFailure("README.md has no list of corpus cases flowlog is not compared on")
        }
        var cases: [String: String] = [:]
        for line in text[start.upperBound...].split(separator: "\n").dropFirst() {
            if line.hasPrefix("#") { break }
            guard line.hasPrefix("- `") else { continue }
            let rest = line.dropFirst(3)
            if let end = rest.firstIndex(of: "`") {
                cases[String(rest[..<end])] = String(rest[rest.index(after: end)...]).trimmingCharacters(in: CharacterSet(charactersIn: ": "))
            }
        }
        return cases
    }
}
