import Foundation
import LBCore
import LBGen
import LBTestSupport

struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Where the tests find what was built with them: `lb` and `liblbworker.so` sit beside the test
/// bundle (.build/debug); the repository is three levels above this file.
enum Built {
    static let directory: String = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("lb").path) { return url.path }
        }
        return repoRoot + "/.build/debug"
    }()
    static var lb: String { directory + "/lb" }
    static let repoRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}

/// A scratch directory, removed when the value goes away.
final class Scratch {
    let path: String
    init(_ tag: String) throws {
        path = NSTemporaryDirectory() + "lbw-\(tag)-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A child process with its output in files; killed when the value goes away (also when a
/// test fails half-way), so no test leaves an lb behind.
final class Proc {
    let child: ChildProcess
    let label: String
    let out: String
    let err: String
    init(_ path: String, _ args: [String], in dir: String, label: String, environment: [String: String] = [:]) throws {
        self.label = label
        out = dir + "/\(label).out"
        err = dir + "/\(label).err"
        child = try ChildProcess(path, args, stdout: out, stderr: err, environment: environment)
    }
    deinit {
        if child.isRunning { child.signal(SIGKILL); _ = try? child.wait(seconds: 5) }
    }
    var stdout: String { ChildProcess.readFile(out) }
    var stderr: String { ChildProcess.readFile(err) }

    /// Waits for the exit; throws (with stderr) after `seconds` or on a non-zero status.
    @discardableResult
    func finish(seconds: Double = 60, expect: Int32? = 0) throws -> Int32 {
        let status: Int32
        do { status = try child.wait(seconds: seconds) } catch { throw Failure("\(label): \(error); stderr: \(stderr)") }
        if let expect, status != expect { throw Failure("\(label) exited \(status), expected \(expect): \(stderr)") }
        return status
    }

    /// Runs to completion.
    @discardableResult
    static func run(_ path: String, _ args: [String], in dir: String, label: String,
                    environment: [String: String] = [:], seconds: Double = 120) throws -> Proc {
        let p = try Proc(path, args, in: dir, label: label, environment: environment)
        try p.finish(seconds: seconds)
        return p
    }
}

/// lb's final stats: the per-ring lines by ring name, and the aggregate line.
struct FinalStats {
    var rings: [String: [String: Any]] = [:]
    var raw: [String: String] = [:]
    var aggregate: [String: Any] = [:]

    init(_ stdout: String) throws {
        let lines = try StatsLines(stdout, finalOnly: true)
        guard let a = lines.lb else { throw Failure("no final stats line in lb's output:\n\(stdout)") }
        rings = lines.rings
        raw = lines.raw
        aggregate = a
    }

    func int(_ ring: String, _ field: String) -> Int? { (rings[ring]?[field] as? NSNumber)?.intValue }
    func double(_ ring: String, _ field: String) -> Double? { (rings[ring]?[field] as? NSNumber)?.doubleValue }
    func isNull(_ ring: String, _ field: String) -> Bool { rings[ring]?[field] is NSNull }
}

/// Test traffic: TCP conversations (handshake, two data segments each way, close) whose
/// expected Zeek-style loss figures are known.
enum Traffic {
    static let start: UInt64 = 1_700_000_000_000_000_000

    /// One conversation of 10 packets; with `hole` the client's second data segment is left out
    /// (9 packets), which a worker sees as 1 gap (the server ACKs data it never saw). Every
    /// packet but the first SYN carries an ACK: 9 acks, or 8 with the hole.
    static func conversation(_ i: Int, hole: Bool, vxlan: Bool) -> [[UInt8]] {
        let client = IPv4(10, 1, UInt8(i / 256), UInt8(i % 256)), server: IPv4 = "10.2.0.1"
        let cport = UInt16(40000 + i), sport: UInt16 = 80
        let c = UInt32(1000 + i * 7919), s = UInt32(5000 + i * 104_729)
        let data = [UInt8](repeating: 0x61, count: 100)
        func pkt(_ fromClient: Bool, seq: UInt32, ack: UInt32, flags: TCPFlags, payload: Bool = false) -> [UInt8] {
            var layers: [Layer] = []
            if vxlan {
                layers += [.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .udp(sport: UInt16(50000 + i % 1000), dport: 4789), .vxlan(vni: 77)]
            }
            layers += [.ethernet(),
                       fromClient ? .ipv4(src: client, dst: server) : .ipv4(src: server, dst: client),
                       .tcp(sport: fromClient ? cport : sport, dport: fromClient ? sport : cport, seq: seq, ack: ack, flags: flags)]
            if payload { layers.append(.payload(data)) }
            return PacketBuilder.build(layers)
        }
        var p: [[UInt8]] = [
            pkt(true, seq: c, ack: 0, flags: .syn),
            pkt(false, seq: s, ack: c + 1, flags: [.syn, .ack]),
            pkt(true, seq: c + 1, ack: s + 1, flags: .ack),
            pkt(true, seq: c + 1, ack: s + 1, flags: [.ack, .psh], payload: true),
        ]
        if !hole { p.append(pkt(true, seq: c + 101, ack: s + 1, flags: [.ack, .psh], payload: true)) }
        p += [
            pkt(false, seq: s + 1, ack: c + 201, flags: .ack),
            pkt(false, seq: s + 1, ack: c + 201, flags: [.ack, .psh], payload: true),
            pkt(true, seq: c + 201, ack: s + 101, flags: [.fin, .ack]),
            pkt(false, seq: s + 101, ack: c + 202, flags: [.fin, .ack]),
            pkt(true, seq: c + 202, ack: s + 102, flags: .ack),
        ]
        return p
    }

    /// `flows` conversations, interleaved; flows with i % 3 == 0 come inside VXLAN, flows with
    /// i % 4 == 1 have a hole. Returns the packets with their expected gap and ack totals.
    static func conversations(_ flows: Int) -> (packets: [[UInt8]], gaps: Int, acks: Int) {
        var all: [[[UInt8]]] = []
        var gaps = 0, acks = 0
        for i in 0..<flows {
            let hole = i % 4 == 1
            all.append(conversation(i, hole: hole, vxlan: i % 3 == 0))
            gaps += hole ? 1 : 0
            acks += hole ? 8 : 9
        }
        var out: [[UInt8]] = []
        for k in 0..<10 { for f in all where k < f.count { out.append(f[k]) } }
        return (out, gaps, acks)
    }

    /// Writes a classic pcap of `packets`, one millisecond apart.
    static func write(_ packets: [[UInt8]], to path: String) throws {
        let file = Pcap.file(linkType: 1, nanosecond: true,
                             packets: packets.enumerated().map { (start + UInt64($0.offset) * 1_000_000, $0.element) })
        guard FileManager.default.createFile(atPath: path, contents: Data(file)) else { throw Failure("cannot write \(path)") }
    }
}
