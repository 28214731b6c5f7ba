import Foundation

/// Runs programs for the tests, with output in files and a deadline, so no test can hang.
public final class Tool: @unchecked Sendable {
    public let child: ChildProcess
    public let stdoutPath: String
    public let stderrPath: String
    public let label: String

    /// The directory holding the built `lb` (beside the test bundle).
    public static let buildDirectory: String = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("lb").path) { return url.path }
        }
        return Corpus.repoRoot + "/.build/debug"
    }()

    /// The lb under test: $LB_BINARY (scripts/test points it at the release build), else the
    /// one built with the tests.
    public static var lb: String {
        if let b = ProcessInfo.processInfo.environment["LB_BINARY"], !b.isEmpty { return b }
        return buildDirectory + "/lb"
    }

    public init(_ path: String, _ args: [String], in dir: String, label: String, environment: [String: String] = [:]) throws {
        self.label = label
        stdoutPath = dir + "/\(label).out"
        stderrPath = dir + "/\(label).err"
        child = try ChildProcess(path, args, stdout: stdoutPath, stderr: stderrPath, environment: environment)
    }

    public var pid: Int32 { child.pid }

    /// Waits for the exit; kills the process and throws after `seconds`.
    @discardableResult
    public func wait(seconds: Double) throws -> Int32 {
        do {
            return try child.wait(seconds: seconds)
        } catch {
            throw TestFailure("\(label) did not finish within \(seconds) s; stderr: \(stderr)")
        }
    }

    public func signal(_ sig: Int32) { child.signal(sig) }

    public var stdout: String { ChildProcess.readFile(stdoutPath) }
    public var stderr: String { ChildProcess.readFile(stderrPath) }

    /// Runs to completion and returns (status, stdout).
    public static func run(_ path: String, _ args: [String], in dir: String, label: String, seconds: Double = 120) throws -> (Int32, String) {
        let t = try Tool(path, args, in: dir, label: label)
        let status = try t.wait(seconds: seconds)
        return (status, t.stdout)
    }
}

/// A scratch directory (mode 0755, so that lb running as another user can reach what the test
/// puts there) removed when the value goes away.
public final class Scratch {
    public let path: String
    public init(_ tag: String) throws {
        let safe = tag.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
        path = NSTemporaryDirectory() + "lb-test-\(String(safe.prefix(60)))-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o755)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The name the end-to-end and flow tests use.
public typealias ScratchDirectory = Scratch
