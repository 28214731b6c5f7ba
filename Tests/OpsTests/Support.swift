import Foundation
import LBTestSupport

/// A program run by the ops tests, output in files, killed (SIGTERM, then SIGKILL) when the
/// value goes away, so that no test leaves a process behind, also when it fails.
final class Proc: @unchecked Sendable {
    let child: ChildProcess
    let out: String
    let err: String
    let label: String

    init(_ path: String, _ args: [String], in dir: String, label: String, environment: [String: String] = [:]) throws {
        self.label = label
        out = dir + "/\(label).out"
        err = dir + "/\(label).err"
        child = try ChildProcess(path, args, stdout: out, stderr: err, environment: environment)
    }

    deinit { stop() }

    var pid: Int32 { child.pid }
    var stdout: String { ChildProcess.readFile(out) }
    var stderr: String { ChildProcess.readFile(err) }
    var isRunning: Bool { child.isRunning }

    func signal(_ s: Int32) { child.signal(s) }

    /// Ends the process if it still runs (SIGCONT first, in case a test stopped it).
    func stop() {
        guard child.isRunning else { return }
        child.signal(SIGCONT)
        child.signal(SIGTERM)
        _ = try? child.wait(seconds: 5)
    }

    @discardableResult
    func wait(seconds: Double) throws -> Int32 {
        do { return try child.wait(seconds: seconds) } catch {
            throw OpsFailure("\(label) did not finish within \(seconds) s; stderr: \(stderr)")
        }
    }

    /// Runs to completion: (status, stdout, stderr).
    static func run(_ path: String, _ args: [String], in dir: String, label: String, seconds: Double = 60,
                    environment: [String: String] = [:]) throws -> (Int32, String, String) {
        let p = try Proc(path, args, in: dir, label: label, environment: environment)
        let s = try p.wait(seconds: seconds)
        return (s, p.stdout, p.stderr)
    }
}

struct OpsFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

enum Ops {
    /// The lb under test: $LB_BINARY, else the one built beside the tests.
    static var lb: String { Tool.lb }

    /// A trace made by `lb gen`.
    static func trace(in dir: String, packets: Int, flows: Int, seed: Int = 7) throws -> String {
        let path = dir + "/gen.pcap"
        let (s, _, err) = try Proc.run(lb, ["gen", "-w", path, "--packets", "\(packets)", "--flows", "\(flows)", "--seed", "\(seed)"],
                                       in: dir, label: "gen")
        guard s == 0 else { throw OpsFailure("lb gen failed: \(err)") }
        return path
    }

    /// Polls `body` every 100 ms until it returns true or `seconds` pass.
    static func until(_ seconds: Double, _ body: () throws -> Bool) rethrows -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try body() { return true }
            usleep(100_000)
        }
        return try body()
    }

    /// A TCP port nothing listens on now (the kernel picks it).
    static func freePort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = 0
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return UInt16(bigEndian: a.sin_port)
    }

    /// lb's stats as JSON objects (one per ring, keyed NAME:K, and "lb").
    static func stats(runDir: String, in dir: String) throws -> [String: [String: Any]] {
        let (s, out, err) = try Proc.run(lb, ["stats", "--json", "--run-dir", runDir], in: dir, label: "stats-\(UInt32.random(in: 0...UInt32.max))")
        guard s == 0 else { throw OpsFailure("lb stats exited \(s): \(err)") }
        let lines = try StatsLines(out)
        var result = lines.rings
        result["lb"] = lines.lb
        return result
    }
}

/// A scratch directory (mode 0755) removed when the value goes away.
final class Scratch {
    let path: String
    init(_ tag: String) throws {
        path = NSTemporaryDirectory() + "lb-ops-\(tag)-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o755)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

extension Dictionary where Key == String, Value == Any {
    func int(_ k: String) -> Int { (self[k] as? NSNumber)?.intValue ?? 0 }
}
