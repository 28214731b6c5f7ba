import Foundation
import Testing

/// `lb --config FILE` and `lb check-config FILE` (issue 17 item 5; docs/configuration.md).
@Suite(.serialized) struct ConfigFileTests {
    static func write(_ text: String, to path: String) throws { try text.write(toFile: path, atomically: true, encoding: .utf8) }

    /// A run from a file delivers what the same options on the command line deliver, ring by ring.
    @Test func aFileIsTheCommandLine() throws {
        let scratch = try ScratchDirectory("config")
        let trace = scratch.path + "/mix.pcap"
        let (gs, _, gerr) = try Proc.run(Tool.lb, ["gen", "-w", trace, "--packets", "4000", "--seed", "31"], in: scratch.path, label: "gen")
        try #require(gs == 0, "\(gerr)")
        let options = ["--filter", "b=not (tcp port 80)", "--slice", "a=100", "--hash", "3", "--tunnel-port", "vxlan:8472", "--tenant-tag", "vni"]
        try Self.write("""
            # the same as the command line
            filter:
              - "b=not (tcp port 80)"
            slice: [ "a=100" ]
            hash: 3
            tunnel-port:
              - vxlan:8472
            tenant-tag: vni
            hash-vlan: false
            """, to: scratch.path + "/lb.yaml")
        var outputs: [[[UInt8]]] = []
        for (i, extra) in [options, ["--config", scratch.path + "/lb.yaml"]].enumerated() {
            let dir = scratch.path + "/run\(i)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var run = LBRun(dir: dir, groups: [("a", 2), ("b", 1)])
            try run.startLB(trace, extra: extra)
            try run.startConsumers()
            _ = try run.finish()
            outputs.append(try run.rings.map { r in try readCapture(run.files(r)[0]).flatMap(\.bytes) })
        }
        #expect(outputs[0] == outputs[1])
        #expect(outputs[0].allSatisfy { !$0.isEmpty })
    }

    /// Options on the command line follow the file's: a single-valued one given in both is the
    /// command line's; lists add up.
    @Test func theCommandLineComesAfterTheFile() throws {
        let scratch = try ScratchDirectory("config-order")
        let trace = scratch.path + "/small.pcap"
        _ = try Proc.run(Tool.lb, ["gen", "-w", trace, "--packets", "10"], in: scratch.path, label: "gen")
        try Self.write("input: pcap:\(trace)\nwait: 30\npipes: [a:1]\n", to: scratch.path + "/lb.yaml")
        let (s, out, err) = try Proc.run(Tool.lb, ["check-config", scratch.path + "/lb.yaml", "--wait", "2", "--pipes", "b:1"], in: scratch.path, label: "check")
        #expect(s == 0, "\(err)")
        #expect(out.contains("--wait 30") && out.contains("--wait 2") && out.contains("--pipes a:1") && out.contains("--pipes b:1"), "\(out)")
        let t = try Tool(Tool.lb, ["--config", scratch.path + "/lb.yaml", "-w", "1", "--run-dir", scratch.path + "/run"], in: scratch.path, label: "lb")
        #expect(try t.wait(seconds: 30) == 0, "\(t.stderr)")
        #expect(t.stderr.contains("waiting up to 1 s"), "\(t.stderr)")
    }

    /// Every kind of mistake is a usage error (exit 64) naming the file, the line and the key.
    @Test func mistakesNameTheFileAndTheLine() throws {
        let scratch = try ScratchDirectory("config-bad")
        let cases: [(String, String)] = [
            ("input: pcap:/dev/null\npipez: [a:1]\n", "bad.yaml:2: 'pipez' is not an option of lb (did you mean 'pipes'?)"),
            ("input: pcap:/dev/null\nslice:\n  a: 1\n", "bad.yaml:2: 'slice': a value or a list of values, not a mapping"),
            ("input: pcap:/dev/null\nhash: 7\n", "bad.yaml:2: 'hash': "),
            ("input: pcap:/dev/null\npipes: [a:1]\nfilter: [\"a=tcp port\"]\n", "bad.yaml:3: 'filter': "),
            ("input: [\n", "not YAML"),
            ("- input\n", "must be a mapping"),
        ]
        for (text, message) in cases {
            let path = scratch.path + "/bad.yaml"
            try Self.write(text, to: path)
            let (s, _, err) = try Proc.run(Tool.lb, ["check-config", path], in: scratch.path, label: "check")
            #expect(s == 64 && err.contains(message), "\(text): \(s) \(err)")
            let (rs, _, rerr) = try Proc.run(Tool.lb, ["--config", path, "--run-dir", scratch.path + "/run"], in: scratch.path, label: "run")
            #expect(rs == 64 && rerr.contains(message.replacingOccurrences(of: "check-config", with: "lb")), "run: \(text): \(rs) \(rerr)")
        }
        let (ms, _, merr) = try Proc.run(Tool.lb, ["check-config", scratch.path + "/none.yaml"], in: scratch.path, label: "missing")
        #expect(ms == 64 && merr.contains("cannot read"))
    }

    /// The shipped example passes, and the systemd unit is one systemd accepts.
    @Test func theExamplesAreValid() throws {
        let scratch = try ScratchDirectory("config-example")
        let example = Corpus.repoRoot + "/docs/examples/lb.yaml"
        let (s, out, err) = try Proc.run(Tool.lb, ["check-config", example], in: scratch.path, label: "check")
        #expect(s == 0 && out.contains("--input af_xdp:eth1"), "\(out) \(err)")
        // systemd-analyze verify the unit with this build's lb in place of /usr/local/bin/lb
        let unit = try String(contentsOfFile: Corpus.repoRoot + "/docs/examples/lb.service", encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/lb", with: Tool.lb)
        let path = scratch.path + "/lb.service"
        try unit.write(toFile: path, atomically: true, encoding: .utf8)
        let (vs, vout, verr) = try Proc.run("/usr/bin/systemd-analyze", ["verify", path], in: scratch.path, label: "verify")
        #expect(vs == 0 && !(vout + verr).contains("lb.service:"), "\(vout) \(verr)")
    }
}
