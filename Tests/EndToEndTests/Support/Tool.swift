import Foundation

/// Runs programs for the tests, with output in files and a deadline, so no test can hang.
final class Tool: @unchecked Sendable {
    let process = Process()
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

    /// Foundation's Process.run() is not safe to call from several threads at once on Linux
    /// (seen here: a crash in memmove inside it when two tests spawned together), so spawning
    /// is serialized. The processes still run concurrently.
    static let spawnLock = NSLock()

    init(_ path: String, _ args: [String], in dir: String, label: String, environment: [String: String] = [:]) throws {
        Tool.spawnLock.lock()
        defer { Tool.spawnLock.unlock() }
        self.label = label
        stdoutPath = dir + "/\(label).out"
        stderrPath = dir + "/\(label).err"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// Waits for the exit; kills the process and throws after `seconds`.
    @discardableResult
    func wait(seconds: Double) throws -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning {
            if Date() > deadline {
                process.terminate()
                usleep(200_000)
                if process.isRunning { kill(pid, SIGKILL) }
                throw TestFailure("\(label) did not finish within \(seconds) s; stderr: \(stderr)")
            }
            usleep(5_000)
        }
        return process.terminationStatus
    }

    func signal(_ sig: Int32) { kill(pid, sig) }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

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
