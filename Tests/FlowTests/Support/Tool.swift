import Foundation
// Copied from Tests/EndToEndTests/Support (test targets cannot share sources).
import LBTestSupport

/// Runs programs for the tests, with output in files and a deadline, so no test can hang.
final class Tool: @unchecked Sendable {
    let child: ChildProcess
    let stdoutPath: String
    let stderrPath: String
    let label: String

    /// The directory holding the built `lb` (beside the test bundle).
    static let buildDirectory: String = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("lb").path) { return url.path }
        }
        return Corpus.repoRoot + "/.build/debug"
    }()

    /// The lb under test: $LB_BINARY (scripts/test points it at the release build), else the
    /// one built with the tests.
    static var lb: String {
        if let b = ProcessInfo.processInfo.environment["LB_BINARY"], !b.isEmpty { return b }
        return buildDirectory + "/lb"
    }

    init(_ path: String, _ args: [String], in dir: String, label: String, environment: [String: String] = [:]) throws {
        self.label = label
        stdoutPath = dir + "/\(label).out"
        stderrPath = dir + "/\(label).err"
        child = try ChildProcess(path, args, stdout: stdoutPath, stderr: stderrPath, environment: environment)
    }

    var pid: Int32 { child.pid }

    /// Waits for the exit; kills the process and throws after `seconds`.
    @discardableResult
    func wait(seconds: Double) throws -> Int32 {
        do {
            return try child.wait(seconds: seconds)
        } catch {
            throw TestFailure("\(label) did not finish within \(seconds) s; stderr: \(stderr)")
        }
    }

    func signal(_ sig: Int32) { child.signal(sig) }

    var stdout: String { ChildProcess.readFile(stdoutPath) }
    var stderr: String { ChildProcess.readFile(stderrPath) }

    /// Runs to completion and returns (status, stdout).
    static func run(_ path: String, _ args: [String], in dir: String, label: String, seconds: Double = 120) throws -> (Int32, String) {
        let t = try Tool(path, args, in: dir, label: label)
        let status = try t.wait(seconds: seconds)
        return (status, t.stdout)
    }
}

/// A scratch directory removed when the value goes away.
final class ScratchDirectory {
    let path: String
    init(_ tag: String) throws {
        let safe = tag.map { $0.isLetter || $0.isNumber ? $0 : "_" }
        path = NSTemporaryDirectory() + "lb-test-\(String(safe.prefix(60)))-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
