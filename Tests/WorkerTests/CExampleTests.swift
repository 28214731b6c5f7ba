import Foundation
import Glibc
import LBRing
import LBWorker
import Testing

/// The acceptance test of the C ABI: install into a temporary PREFIX, build the C example
/// with `cc $(pkg-config --cflags --libs lbworker)`, run one example per ring of a real lb
/// replaying TCP conversations with known holes, and check that lb's final stats show, per
/// ring, what each example processed and the loss it estimated.
@Suite struct CExampleTests {
    struct ExampleResult { let ring: String; let processed: Int; let gaps: Int; let acks: Int }

    /// Parses "ring NAME:K processed P gaps G acks A bytes B".
    static func parse(_ out: String) throws -> ExampleResult {
        let w = out.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        guard w.count >= 10, w[0] == "ring", w[2] == "processed", w[4] == "gaps", w[6] == "acks",
              let p = Int(w[3]), let g = Int(w[5]), let a = Int(w[7]) else { throw TestFailure("unexpected example output: \(out)") }
        return ExampleResult(ring: w[1], processed: p, gaps: g, acks: a)
    }

    static func pkgConfig(_ prefix: String, in dir: String) throws -> [String] {
        try Proc.succeed("/usr/bin/pkg-config", ["--cflags", "--libs", "lbworker"], in: dir, label: "pkgconfig",
                     environment: ["PKG_CONFIG_PATH": prefix + "/lib/pkgconfig"])
            .stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
    }

    /// `cc $(pkg-config --cflags --libs lbworker)` against the installed prefix.
    static func buildExample(prefix: String, in dir: String) throws -> String {
        let example = dir + "/lb_worker_example"
        try Proc.succeed("/usr/bin/cc", ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", example,
                                     Corpus.repoRoot + "/examples/c/lb_worker_example.c"] + pkgConfig(prefix, in: dir),
                     in: dir, label: "cc")
        return example
    }

    static func install(into prefix: String, in dir: String) throws {
        let lib = Tool.buildDirectory + "/liblbworker.so"
        guard FileManager.default.fileExists(atPath: lib) else {
            throw TestFailure("\(lib) is not built: run `swift build --build-tests` or `swift build --product lbworker`")
        }
        try Proc.succeed("/bin/bash", [Corpus.repoRoot + "/scripts/install", "--prefix", prefix, "--build-dir", Tool.buildDirectory],
                     in: dir, label: "install")
    }

    /// "No privileges beyond access to the ring": lb and the example both run as nobody.
    @Test func exampleNeedsNoPrivileges() throws {
        let scratch = try Scratch("cabi-nobody")
        let prefix = scratch.path + "/prefix"
        try Self.install(into: prefix, in: scratch.path)
        let example = try Self.buildExample(prefix: prefix, in: scratch.path)
        let (packets, gaps, _) = Traffic.conversations(12)
        let trace = scratch.path + "/conversations.pcap"
        try Traffic.write(packets, to: trace)
        let runDir = scratch.path + "/run"
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o777])
        chmod(scratch.path, 0o755)
        chown(runDir, 65534, 65534)   // lb (nobody) must own its run directory
        chmod(runDir, 0o755)
        let asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        // The example starts first and waits for lb; lb replays slowly (about a second), so both
        // can be seen running as nobody.
        let ex = try Proc("/usr/bin/setpriv", asNobody + [example, "np:0", runDir], in: scratch.path, label: "example")
        #expect(Self.seenRunningAs(ex.child.pid, exe: "lb_worker_example", uid: 65534))
        let lb = try Proc("/usr/bin/setpriv", asNobody + [prefix + "/bin/lb", "-i", "pcap:" + trace, "-p", "np:1",
                                                          "--run-dir", runDir, "-w", "30", "--replay-rate", "100"],
                          in: scratch.path, label: "lb")
        #expect(Self.seenRunningAs(lb.child.pid, exe: "/lb", uid: 65534))
        try lb.finish(seconds: 60)
        try ex.finish(seconds: 30)
        let r = try Self.parse(ex.stdout)
        #expect(r.processed == packets.count && r.gaps == gaps)
        let stats = try LBStats(lb.stdout)
        #expect(stats.int("np:0", "packets_processed_by_worker") == packets.count)
        #expect(stats.int("np:0", "worker_loss_gaps") == gaps)
    }

    /// Waits (up to 5 s) until `pid` runs `exe` (after setpriv's exec) and reports whether its
    /// real and effective uid are `uid` then.
    static func seenRunningAs(_ pid: Int32, exe: String, uid: Int) -> Bool {
        for _ in 0..<500 {
            let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? ""
            if path.hasSuffix(exe) {
                let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
                guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) else { return false }
                let ids = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().compactMap { Int($0) }
                return ids.count >= 2 && ids[0] == uid && ids[1] == uid
            }
            usleep(10_000)
        }
        return false
    }

    @Test func cExampleAttachesReadsReportsLossAndLBShowsIt() throws {
        let scratch = try Scratch("cabi")
        // Install from the build the tests were made with (scripts/install builds release itself
        // when --build-dir is not given).
        let prefix = scratch.path + "/prefix"
        try Self.install(into: prefix, in: scratch.path)
        for f in ["bin/lb", "lib/liblbworker.so", "lib/liblbworker.so.1", "include/lb_worker.h", "include/lb_ring.h",
                  "lib/pkgconfig/lbworker.pc"] {
            #expect(FileManager.default.fileExists(atPath: prefix + "/" + f), "\(f) installed")
        }
        // the library is installed under its ABI version, the plain name links to it
        let link = try? FileManager.default.destinationOfSymbolicLink(atPath: prefix + "/lib/liblbworker.so")
        #expect(link == "liblbworker.so.1")
        // DESTDIR staging: files under DESTDIR, paths inside the .pc file without it.
        let stage = scratch.path + "/stage"
        try Proc.succeed("/bin/bash", [Corpus.repoRoot + "/scripts/install", "--prefix", "/opt/lbw-\(getpid())", "--destdir", stage,
                                   "--build-dir", Tool.buildDirectory], in: scratch.path, label: "install-destdir")
        let pc = (try? String(contentsOfFile: stage + "/opt/lbw-\(getpid())/lib/pkgconfig/lbworker.pc", encoding: .utf8)) ?? ""
        #expect(pc.contains("prefix=/opt/lbw-\(getpid())\n") && !pc.contains(stage), "staged lbworker.pc: \(pc)")
        #expect(FileManager.default.fileExists(atPath: stage + "/opt/lbw-\(getpid())/lib/liblbworker.so"))
        #expect(!FileManager.default.fileExists(atPath: "/opt/lbw-\(getpid())"), "nothing outside DESTDIR")

        let ldd = try Proc.succeed("/usr/bin/ldd", [prefix + "/lib/liblbworker.so"], in: scratch.path, label: "ldd")
        #expect(!ldd.stdout.contains("libxdp") && !ldd.stdout.contains("libbpf"), "liblbworker links neither: \(ldd.stdout)")

        let example = try Self.buildExample(prefix: prefix, in: scratch.path)
        // The header is usable from C++ too (Zeek and Suricata plugins are C++ / C).
        try Proc.succeed("/usr/bin/c++", ["-x", "c++", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                                      Corpus.repoRoot + "/examples/c/lb_worker_example.c"] + Self.pkgConfig(prefix, in: scratch.path),
                     in: scratch.path, label: "cxx")
        // A bad name fails at once with a message and errno (EINVAL).
        let bad = try Proc(example, ["no-ring-number", scratch.path + "/none"], in: scratch.path, label: "bad")
        try bad.finish(seconds: 10, expect: 1)
        #expect(bad.stderr.contains("not a ring name") && bad.stderr.contains("errno \(EINVAL)"), "\(bad.stderr)")

        let (packets, gaps, acks) = Traffic.conversations(60)
        let trace = scratch.path + "/conversations.pcap"
        try Traffic.write(packets, to: trace)
        let runDir = scratch.path + "/run"
        // The examples start first and wait for lb (as a worker started by a supervisor would).
        let examples = try (0..<2).map { k in
            try Proc(example, ["cx:\(k)", runDir], in: scratch.path, label: "example\(k)")
        }
        let lb = try Proc(prefix + "/bin/lb", ["-i", "pcap:" + trace, "-p", "cx:2", "--run-dir", runDir, "-w", "30"],
                          in: scratch.path, label: "lb")
        try lb.finish(seconds: 120)
        var results: [ExampleResult] = []
        for (k, e) in examples.enumerated() {
            try e.finish(seconds: 30)
            results.append(try Self.parse(e.stdout))
            #expect(e.stderr.contains("attached to cx:\(k) (ring \(k + 1) of 2, 1 lane(s), snaplen 65535, lb pid \(lb.child.pid))"),
                    "lb_worker_info: \(e.stderr)")
        }
        let stats = try LBStats(lb.stdout)
        for r in results {
            #expect(stats.int(r.ring, "packets_forwarded") == r.processed, "\(r.ring) forwarded vs processed")
            #expect(stats.int(r.ring, "packets_processed_by_worker") == r.processed, "\(r.ring): \(stats.raw[r.ring] ?? "")")
            #expect(stats.int(r.ring, "worker_loss_gaps") == r.gaps)
            #expect(stats.int(r.ring, "worker_loss_acks") == r.acks)
            if r.acks > 0 {
                let pct = stats.double(r.ring, "worker_loss_percent") ?? -1
                #expect(abs(pct - Double(r.gaps) / Double(r.acks) * 100) < 0.001)
            }
            #expect(stats.int(r.ring, "packets_dropped") == 0)
            #expect(stats.double(r.ring, "worker_report_age_s") != nil)
        }
        #expect(Set(results.map(\.ring)) == ["cx:0", "cx:1"])
        #expect(results.reduce(0) { $0 + $1.processed } == packets.count)
        #expect(results.reduce(0) { $0 + $1.gaps } == gaps, "every hole is found once, on the ring of its flow")
        #expect(results.reduce(0) { $0 + $1.acks } == acks)
        #expect(results.allSatisfy { $0.gaps > 0 }, "both rings carry flows with holes: \(results)")
    }
}

/// The shunt calls of the C ABI: examples/c/lb_worker_shunt.c shunts a bulk connection after
/// 100 kB of payload (lb_worker_shunt on a packet it read); lb stops sending it to that group
/// (the other group gets everything), and what the example read plus what lb shunted is the
/// whole trace. The Swift API's flow form is checked on the same run.
@Suite struct CShuntTests {
    @Test func exampleShuntsAnElephant() throws {
        let scratch = try Scratch("cabi-shunt")
        let prefix = scratch.path + "/prefix"
        try CExampleTests.install(into: prefix, in: scratch.path)
        let example = scratch.path + "/lb_worker_shunt"
        try Proc.succeed("/usr/bin/cc", ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", example,
                                     Corpus.repoRoot + "/examples/c/lb_worker_shunt.c"] + CExampleTests.pkgConfig(prefix, in: scratch.path),
                     in: scratch.path, label: "cc")
        let trace = scratch.path + "/bulk.pcap"
        try Traffic.bulk(to: trace, dataPackets: 3000)
        let total = try readCapture(trace).count
        let runDir = scratch.path + "/run"
        let lb = try Proc(Tool.lb, ["-i", "pcap:" + trace, "-p", "a:1", "-p", "b:1", "--run-dir", runDir, "-w", "30", "--replay-rate", "3000"],
                          in: scratch.path, label: "lb")
        let ex = try Proc(example, ["a:0", "100000", runDir], in: scratch.path, label: "example")
        var consumer = try RingConsumer.attach(RingName(group: "b", index: 0), runDir: runDir, waitNanos: 30_000_000_000)
        // the flow form, through the Swift API: a flow nobody shunted cannot be unshunted
        #expect(throws: AttachError.self) { try consumer.unshunt(flow: "proto=udp src=10.0.0.2 sport=3333 dst=10.0.0.53 dport=53") }
        var readB = 0
        while true {
            let r = consumer.nextBatch(max: 256, timeoutNanos: 1_000_000_000) { _, _, _ in readB += 1 }
            if case .endOfStream = r { break }
            if case .producerGone = r { break }
            consumer.release()
        }
        try lb.finish(seconds: 60)
        try ex.finish(seconds: 30)
        let w = ex.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        try #require(w.count >= 8 && w[2] == "packets", "\(ex.stdout) \(ex.stderr)")
        let readA = Int(w[3]) ?? -1
        #expect(w[5] == "1" && w[7] == "0", "\(ex.stdout)")           // one shunt, none refused
        let stats = try LBStats(lb.stdout)
        let shunted = stats.int("a:0", "shunted_packets") ?? -1
        #expect(readB == total && stats.int("b:0", "shunted_packets") == 0)
        #expect(shunted > 1000 && readA + shunted == total, "read \(readA) + shunted \(shunted) vs \(total)")
    }
}
