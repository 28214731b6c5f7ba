import Foundation
import Glibc
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
              let p = Int(w[3]), let g = Int(w[5]), let a = Int(w[7]) else { throw Failure("unexpected example output: \(out)") }
        return ExampleResult(ring: w[1], processed: p, gaps: g, acks: a)
    }

    @Test func cExampleAttachesReadsReportsLossAndLBShowsIt() throws {
        let scratch = try Scratch("cabi")
        let lib = Built.directory + "/liblbworker.so"
        guard FileManager.default.fileExists(atPath: lib) else {
            throw Failure("\(lib) is not built: run `swift build --product lbworker` (scripts/test does)")
        }
        // Install from the build the tests were made with (scripts/install builds release itself
        // when --build-dir is not given).
        let prefix = scratch.path + "/prefix"
        try Proc.run("/bin/bash", [Built.repoRoot + "/scripts/install", "--prefix", prefix, "--build-dir", Built.directory],
                     in: scratch.path, label: "install")
        for f in ["bin/lb", "lib/liblbworker.so", "include/lb_worker.h", "include/lb_ring.h", "lib/pkgconfig/lbworker.pc"] {
            #expect(FileManager.default.fileExists(atPath: prefix + "/" + f), "\(f) installed")
        }
        // DESTDIR staging: files under DESTDIR, paths inside the .pc file without it.
        let stage = scratch.path + "/stage"
        try Proc.run("/bin/bash", [Built.repoRoot + "/scripts/install", "--prefix", "/opt/lbw-\(getpid())", "--destdir", stage,
                                   "--build-dir", Built.directory], in: scratch.path, label: "install-destdir")
        let pc = (try? String(contentsOfFile: stage + "/opt/lbw-\(getpid())/lib/pkgconfig/lbworker.pc", encoding: .utf8)) ?? ""
        #expect(pc.contains("prefix=/opt/lbw-\(getpid())\n") && !pc.contains(stage), "staged lbworker.pc: \(pc)")
        #expect(FileManager.default.fileExists(atPath: stage + "/opt/lbw-\(getpid())/lib/liblbworker.so"))
        #expect(!FileManager.default.fileExists(atPath: "/opt/lbw-\(getpid())"), "nothing outside DESTDIR")

        let ldd = try Proc.run("/usr/bin/ldd", [prefix + "/lib/liblbworker.so"], in: scratch.path, label: "ldd")
        #expect(!ldd.stdout.contains("libxdp") && !ldd.stdout.contains("libbpf"), "liblbworker links neither: \(ldd.stdout)")

        let env = ["PKG_CONFIG_PATH": prefix + "/lib/pkgconfig"]
        let flags = try Proc.run("/usr/bin/pkg-config", ["--cflags", "--libs", "lbworker"], in: scratch.path, label: "pkgconfig",
                                 environment: env).stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        let example = scratch.path + "/lb_worker_example"
        try Proc.run("/usr/bin/cc", ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", example,
                                     Built.repoRoot + "/examples/c/lb_worker_example.c"] + flags,
                     in: scratch.path, label: "cc")
        // The header is usable from C++ too (Zeek and Suricata plugins are C++ / C).
        try Proc.run("/usr/bin/c++", ["-x", "c++", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                                      Built.repoRoot + "/examples/c/lb_worker_example.c"] + flags,
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
            #expect(e.stderr.contains("attached to cx:\(k) (ring \(k + 1) of 2, 1 lane(s), snaplen 9216, lb pid \(lb.child.pid))"),
                    "lb_worker_info: \(e.stderr)")
        }
        let stats = try FinalStats(lb.stdout)
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
