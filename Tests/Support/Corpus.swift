import Foundation

/// The Zeek test traces and Zeek's conn.log for each (../shared/zeek-corpus, or $LB_CORPUS).
public enum Corpus {
    public struct Case: Sendable, CustomStringConvertible {
        public let name: String
        public let trace: String          // path relative to traces/
        public let zeekFlags: String
        /// index.tsv's fourth column: `standard`, `none`, or the analyzers the case loaded
        public let likelyServerPorts: String
        public var description: String { name }
        public var tracePath: String { Corpus.root + "/traces/" + trace }
        public var baselinePath: String { Corpus.root + "/baselines/" + name + ".conn.log" }
    }

    public static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path)
                && FileManager.default.fileExists(atPath: url.appendingPathComponent("Sources/LBCore").path) {
                return url.path
            }
        }
        return FileManager.default.currentDirectoryPath
    }()

    public static let root: String = {
        if let env = ProcessInfo.processInfo.environment["LB_CORPUS"], !env.isEmpty { return env }
        return URL(fileURLWithPath: repoRoot + "/../shared/zeek-corpus").standardizedFileURL.path
    }()

    /// Every case of index.tsv. A missing corpus yields one case that fails saying so.
    public static let cases: [Case] = {
        guard let text = try? String(contentsOfFile: root + "/index.tsv", encoding: .utf8) else {
            return [Case(name: "MISSING-CORPUS", trace: "", zeekFlags: "", likelyServerPorts: "standard")]
        }
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 2 else { return nil }
            return Case(name: f[0], trace: f[1], zeekFlags: f.count > 2 ? f[2] : "",
                        likelyServerPorts: f.count > 3 && !f[3].isEmpty ? f[3] : "standard")
        }
    }()

    public static func requirePresent() throws {
        guard FileManager.default.fileExists(atPath: root + "/index.tsv") else {
            throw TestFailure("the Zeek corpus is missing at \(root) (set LB_CORPUS or place ../shared/zeek-corpus beside the repo)")
        }
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
