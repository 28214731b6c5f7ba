import CLBShim
import Glibc

/// A child process for the tests, started with posix_spawn (thread-safe, unlike Foundation's
/// Process on Linux), with standard output and error going to files.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public private(set) var status: Int32? = nil

    /// Starts `path` with `args`; `environment` entries are added to (or replace) this
    /// process's environment. stdin is /dev/null.
    /// Paths are used as given: pass absolute ones.
    public init(_ path: String, _ args: [String], stdout: String, stderr: String, environment: [String: String] = [:]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        // nothing else of the test process: tests run in parallel, and a child that inherited
        // another test's socket would keep its peer from seeing it close
        lb_shim_spawn_closefrom(&actions, 3)

        var env: [String: String] = [:]
        var e = environ
        while let entry = e.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            e += 1
        }
        for (k, v) in environment { env[k] = v }

        let argv = ([path] + args).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, path, &actions, nil, argv, envp)
        guard rc == 0 else { throw SpawnError("posix_spawn \(path): \(String(cString: strerror(rc)))") }
        pid = child
    }

    /// True while the child runs (reaps it when it has exited).
    public var isRunning: Bool {
        if status != nil { return false }
        var st: Int32 = 0
        let r = waitpid(pid, &st, WNOHANG)
        if r == pid {
            status = Self.exitStatus(st)
            return false
        }
        return r == 0
    }

    /// Waits for the exit; kills the child (SIGTERM, then SIGKILL) and throws after `seconds`.
    @discardableResult
    public func wait(seconds: Double) throws -> Int32 {
        var waited = 0.0
        while isRunning {
            if waited > seconds {
                kill(pid, SIGTERM)
                usleep(200_000)
                if isRunning { kill(pid, SIGKILL) }
                var st: Int32 = 0
                waitpid(pid, &st, 0)
                status = Self.exitStatus(st)
                throw SpawnError("timed out after \(seconds) s")
            }
            usleep(5_000)
            waited += 0.005
        }
        return status ?? -1
    }

    public func signal(_ sig: Int32) { kill(pid, sig) }

    /// The exit code, or 128 + the signal that ended the child.
    static func exitStatus(_ st: Int32) -> Int32 {
        let signal = st & 0x7F
        return signal == 0 ? (st >> 8) & 0xFF : 128 + signal
    }

    /// Runs to completion; returns (status, stdout, stderr). Output goes through temporary files.
    public static func run(_ path: String, _ args: [String], seconds: Double = 300) throws -> (Int32, String, String) {
        let base = "/tmp/lb-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(base + ".out"); unlink(base + ".err") }
        let child = try ChildProcess(path, args, stdout: base + ".out", stderr: base + ".err")
        let status = try child.wait(seconds: seconds)
        return (status, readFile(base + ".out"), readFile(base + ".err"))
    }

    public static func readFile(_ path: String) -> String {
        guard let f = fopen(path, "r") else { return "" }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

public struct SpawnError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
