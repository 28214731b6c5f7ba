import Foundation
// Proc, Scratch, LBStats, eventually and TestFailure: the shared test support
@_exported import LBTestSupport

enum Ops {
    /// The lb under test: $LB_BINARY, else the one built beside the tests.
    static var lb: String { Tool.lb }

    /// A trace made by `lb gen`.
    static func trace(in dir: String, packets: Int, flows: Int, seed: Int = 7) throws -> String {
        let path = dir + "/gen.pcap"
        let (s, _, err) = try Proc.run(lb, ["gen", "-w", path, "--packets", "\(packets)", "--flows", "\(flows)", "--seed", "\(seed)"],
                                       in: dir, label: "gen")
        guard s == 0 else { throw TestFailure("lb gen failed: \(err)") }
        return path
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
        guard s == 0 else { throw TestFailure("lb stats exited \(s): \(err)") }
        return try LBStats(out, final: false).byName
    }
}
