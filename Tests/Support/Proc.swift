import Glibc

/// A program run by a test, output in files (DIR/LABEL.out, DIR/LABEL.err), ended (SIGTERM,
/// then SIGKILL) when the value goes away, so that no test leaves a process behind, also when
/// it fails half-way.
public final class Proc: @unchecked Sendable {
    public let child: ChildProcess
    public let label: String
    /// the files standard output and error go to
    public let out: String
    public let err: String

    public init(_ path: String, _ args: [String], in dir: String, label: String, environment: [String: String] = [:]) throws {
        self.label = label
        out = dir + "/\(label).out"
        err = dir + "/\(label).err"
        child = try ChildProcess(path, args, stdout: out, stderr: err, environment: environment)
    }

    deinit { stop() }

    public var pid: Int32 { child.pid }
    public var stdout: String { ChildProcess.readFile(out) }
    public var stderr: String { ChildProcess.readFile(err) }
    public var isRunning: Bool { child.isRunning }

    public func signal(_ s: Int32) { child.signal(s) }

    /// Ends the process if it still runs (SIGCONT first, in case a test stopped it).
    public func stop() {
        guard child.isRunning else { return }
        child.signal(SIGCONT)
        child.signal(SIGTERM)
        _ = try? child.wait(seconds: 5)          // SIGKILL after that
    }

    /// Waits for the exit; kills the process and throws (with its stderr) after `seconds`.
    @discardableResult
    public func wait(seconds: Double) throws -> Int32 {
        do { return try child.wait(seconds: seconds) } catch {
            throw TestFailure("\(label) did not finish within \(seconds) s; stderr: \(stderr)")
        }
    }

    /// Waits for the exit and throws unless the status is `expect` (nil: any status).
    @discardableResult
    public func finish(seconds: Double = 60, expect: Int32? = 0) throws -> Int32 {
        let status = try wait(seconds: seconds)
        if let expect, status != expect { throw TestFailure("\(label) exited \(status), expected \(expect): \(stderr)") }
        return status
    }

    /// Runs to completion: (status, stdout, stderr).
    public static func run(_ path: String, _ args: [String], in dir: String, label: String, seconds: Double = 60,
                           environment: [String: String] = [:]) throws -> (Int32, String, String) {
        let p = try Proc(path, args, in: dir, label: label, environment: environment)
        let s = try p.wait(seconds: seconds)
        return (s, p.stdout, p.stderr)
    }

    /// Runs to completion and throws unless it exits 0.
    @discardableResult
    public static func succeed(_ path: String, _ args: [String], in dir: String, label: String,
                               environment: [String: String] = [:], seconds: Double = 120) throws -> Proc {
        let p = try Proc(path, args, in: dir, label: label, environment: environment)
        try p.finish(seconds: seconds)
        return p
    }
}

/// Polls `body` every `every` seconds until it returns true or `seconds` pass; the last
/// answer of `body` is the result. For waiting on another process, never to measure time.
public func eventually(_ seconds: Double, every: Double = 0.05, _ body: () throws -> Bool) rethrows -> Bool {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    let end = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 + seconds
    while true {
        if try body() { return true }
        clock_gettime(CLOCK_MONOTONIC, &ts)
        if Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 >= end { return try body() }
        usleep(useconds_t(every * 1e6))
    }
}
