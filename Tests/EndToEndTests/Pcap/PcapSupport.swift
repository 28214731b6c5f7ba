import Foundation
import Testing

/// What liblbpcap's tests share: the library (built by Sources/CLBPcap/build.sh, which
/// scripts/setup runs; built here too when missing or older than its sources), the probe
/// program (Tests/PcapProbe/probe.c), the environment of a preloaded program, and pcap records
/// to compare byte for byte.
enum Pcap {
    static let library: String = {
        let out = Corpus.repoRoot + "/.build/release/liblbpcap.so"
        // build.sh rebuilds only when a source is newer than the library
        _ = try? Tool.run(Corpus.repoRoot + "/Sources/CLBPcap/build.sh", [out], in: NSTemporaryDirectory(),
                          label: "lbpcap-build-\(getpid())")
        return out
    }()

    /// The probe, compiled once per test process into a directory that outlives the tests'.
    static let probe: String = {
        let dir = NSTemporaryDirectory() + "lb-pcap-probe-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let out = dir + "/probe"
        _ = try? Tool.run("/usr/bin/cc", ["-O1", "-Wall", "-o", out, Corpus.repoRoot + "/Tests/PcapProbe/probe.c", "-lpcap"],
                          in: dir, label: "probe-cc")
        return out
    }()

    /// The environment of a program that should see lb's rings (what `lb exec` sets).
    static func env(runDir: String, wait: Double = 30, debug: String? = nil) -> [String: String] {
        var e = ["LD_PRELOAD": library, "LB_RUN_DIR": runDir, "LBPCAP_WAIT": String(wait)]
        if let debug { e["LBPCAP_DEBUG"] = debug }
        return e
    }

    static func requireBuilt() throws {
        guard FileManager.default.fileExists(atPath: library) else { throw TestFailure("\(library) is missing (Sources/CLBPcap/build.sh)") }
        guard FileManager.default.isExecutableFile(atPath: probe) else { throw TestFailure("the probe did not compile (\(probe))") }
    }

    /// `key=value` lines of the probe's output.
    static func values(_ text: String) -> [String: String] {
        var r: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            r[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return r
    }

    /// One record of a classic pcap file: time, lengths and bytes, as the file has them.
    struct Record: Hashable {
        let sec: UInt32, frac: UInt32, caplen: UInt32, len: UInt32
        let data: [UInt8]
    }

    /// The records of a classic pcap file (either time-stamp precision, either byte order).
    static func records(_ file: String) throws -> [Record] {
        let d = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        guard d.count >= 24 else { throw TestFailure("\(file): \(d.count) bytes, not a pcap file") }
        let magic = UInt32(d[0]) | UInt32(d[1]) << 8 | UInt32(d[2]) << 16 | UInt32(d[3]) << 24
        let swapped: Bool
        switch magic {
        case 0xA1B2_C3D4, 0xA1B2_3C4D: swapped = false
        case 0xD4C3_B2A1, 0x4D3C_B2A1: swapped = true
        default: throw TestFailure("\(file): not a classic pcap file (magic \(String(magic, radix: 16)))")
        }
        func u32(_ o: Int) -> UInt32 {
            let v = UInt32(d[o]) | UInt32(d[o + 1]) << 8 | UInt32(d[o + 2]) << 16 | UInt32(d[o + 3]) << 24
            return swapped ? v.byteSwapped : v
        }
        var out: [Record] = []
        var at = 24
        while at + 16 <= d.count {
            let cap = Int(u32(at + 8))
            guard at + 16 + cap <= d.count else { throw TestFailure("\(file): truncated record at byte \(at)") }
            out.append(Record(sec: u32(at), frac: u32(at + 4), caplen: UInt32(cap), len: u32(at + 12), data: Array(d[(at + 16)..<(at + 16 + cap)])))
            at += 16 + cap
        }
        guard at == d.count else { throw TestFailure("\(file): \(d.count - at) stray bytes at the end") }
        return out
    }

    /// Waits until lb's control socket for `group` exists in `runDir`.
    static func waitForSocket(_ runDir: String, group: String, seconds: Double = 30) throws {
        let path = runDir + "/\(group).sock"
        let deadline = Date().addingTimeInterval(seconds)
        while !FileManager.default.fileExists(atPath: path) {
            if Date() > deadline { throw TestFailure("no \(path) after \(seconds) s") }
            usleep(20_000)
        }
    }
}

/// `lb -i pcap:TRACE` with one group read by pcap programs through liblbpcap and a twin group
/// of the same size read by `lb cat` (every group gets every packet and places it by the same
/// hash, so ring K of both groups holds the same packets): what a program read from `p:K` is
/// compared with what it reads from `lb cat c:K`'s file.
struct TwinRun {
    let dir: String
    let runDir: String
    let rings: Int
    var lb: Tool? = nil
    var cats: [Tool] = []

    init(dir: String, rings: Int) {
        self.dir = dir
        runDir = dir + "/run"
        self.rings = rings
    }

    func catFile(_ k: Int) -> String { dir + "/c\(k).pcap" }

    /// Starts lb on `input` (extra arguments after) and `lb cat` on every ring of group c.
    mutating func start(input: String, extra: [String] = []) throws {
        lb = try Tool(Tool.lb, ["-i", input, "-p", "p:\(rings)", "-p", "c:\(rings)", "-w", "60", "--run-dir", runDir] + extra,
                      in: dir, label: "lb")
        for k in 0..<rings {
            cats.append(try Tool(Tool.lb, ["cat", "c:\(k)", "-w", catFile(k), "--run-dir", runDir, "--wait", "60"], in: dir,
                                 label: "cat-c\(k)"))
        }
        try Pcap.waitForSocket(runDir, group: "p")
    }

    /// Starts a program with liblbpcap preloaded.
    func preloaded(_ path: String, _ args: [String], label: String, wait: Double = 30) throws -> Tool {
        try Tool(path, args, in: dir, label: label, environment: Pcap.env(runDir: runDir, wait: wait))
    }

    /// Waits for lb and the cats to exit 0; returns lb's final stats.
    func finish(seconds: Double = 120) throws -> [String: Any] {
        guard let lb else { throw TestFailure("lb not started") }
        let status = try lb.wait(seconds: seconds)
        for c in cats {
            let s = try c.wait(seconds: 30)
            if s != 0 { throw TestFailure("\(c.label) exited \(s): \(c.stderr)") }
        }
        guard status == 0 else { throw TestFailure("lb exited \(status): \(lb.stderr)") }
        return try LBStats(lb.stdout).withRings
    }
}

/// `lb -i pcap:TRACE -p ... -w 60` waiting for its consumers, once the first group's socket is
/// there; killed when the value goes away.
final class ReplayLB {
    let tool: Tool
    init(trace: String, dir: String, groups: [String], extra: [String] = []) throws {
        let runDir = dir + "/run"
        tool = try Tool(Tool.lb, ["-i", "pcap:" + trace] + groups.flatMap { ["-p", $0] } + ["-w", "60", "--run-dir", runDir] + extra,
                        in: dir, label: "lb")
        for g in Set(groups.map { String($0.split(separator: ":")[0]) }) { try Pcap.waitForSocket(runDir, group: g) }
    }
    deinit {
        tool.signal(SIGKILL)
        _ = try? tool.wait(seconds: 10)
    }
    var pid: Int32 { tool.pid }
    var stderr: String { tool.stderr }
    var stdout: String { tool.stdout }
    func wait(seconds: Double) throws -> Int32 { try tool.wait(seconds: seconds) }
}
