import Foundation
import Glibc
import LBCore
import LBSys
import LBTestSupport

/// Where things are, from the shared test support (one definition for every suite).
enum Paths {
    static var repoRoot: String { Corpus.repoRoot }
    static var corpus: String { Corpus.root }
    /// The lb under test: $LB_BINARY, else the one built beside the tests.
    static var lb: String { Tool.lb }
}

/// The UDP payload of an Ethernet/IPv4-or-IPv6/UDP frame (no options in the way), and its ports.
func udpPayload(_ f: [UInt8]) -> (payload: [UInt8], sport: UInt16, dport: UInt16)? {
    guard f.count >= 14 else { return nil }
    var off = 14
    var type = UInt16(f[12]) << 8 | UInt16(f[13])
    while type == 0x8100, f.count >= off + 4 { type = UInt16(f[off + 2]) << 8 | UInt16(f[off + 3]); off += 4 }
    let udp: Int
    if type == 0x0800 {
        guard f.count >= off + 20, f[off + 9] == 17 else { return nil }
        udp = off + Int(f[off] & 0x0F) * 4
    } else if type == 0x86DD {
        guard f.count >= off + 40, f[off + 6] == 17 else { return nil }
        udp = off + 40
    } else { return nil }
    guard f.count >= udp + 8 else { return nil }
    let len = Int(UInt16(f[udp + 4]) << 8 | UInt16(f[udp + 5]))
    let end = min(f.count, udp + max(8, len))
    return (Array(f[(udp + 8)..<end]), UInt16(f[udp]) << 8 | UInt16(f[udp + 1]), UInt16(f[udp + 2]) << 8 | UInt16(f[udp + 3]))
}

/// A plain UDP socket that sends datagrams to one address (loopback in these tests).
final class DatagramSender {
    let fd: Int32
    var addr = sockaddr_storage()
    let len: socklen_t

    init(to address: String, port: UInt16, from sourcePort: UInt16 = 0) throws {
        let v6 = address.contains(":")
        var storage = sockaddr_storage()
        fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
        if v6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            inet_pton(AF_INET6, address, &a.sin6_addr)
            withUnsafeBytes(of: &a) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            len = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = port.bigEndian
            inet_pton(AF_INET, address, &a.sin_addr)
            withUnsafeBytes(of: &a) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            len = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        addr = storage
        if sourcePort != 0 {
            try Sys.bindUDP(fd, address: v6 ? [UInt8](repeating: 0, count: 16) : [0, 0, 0, 0], port: sourcePort)
        }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        let n = bytes.withUnsafeBytes { b in
            withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, b.baseAddress, b.count, 0, $0, len) } }
        }
        guard n == bytes.count else { throw TestFailure("sendto: errno \(errno)") }
    }

    var port: UInt16 { (try? Sys.localPort(fd)) ?? 0 }
}

/// Runs a shell command (for ip, tc, sysctl); throws with its output when it fails.
@discardableResult
func sh(_ command: String) throws -> String {
    let (status, out, err) = try ChildProcess.run("/bin/sh", ["-c", command], seconds: 60)
    guard status == 0 else { throw TestFailure("`\(command)` exited \(status): \(out) \(err)") }
    return out
}

