import Foundation
@testable import LBBroker
@testable import lb
import LBWorker
import Testing

/// One status snapshot, rendered by every view: the -o / `lb stats --json` lines, `lb stats`
/// text, Prometheus. The fields each view must show come from the snapshot's types
/// (`StatusFill` sets every one of them), never from a list kept by hand.
@Suite struct StatusParityTests {
    static func filled() throws -> StatusSnapshot { try StatusFill.make(StatusSnapshot.self) }

    /// (path, value) of every number, bool, string and null in `v`.
    static func leaves(_ v: some Encodable) -> [(path: [String], value: StatusValue)] { StatusEncoder.encode(v).leaves() }

    /// The value at `path` in a JSON object read by JSONSerialization.
    static func lookup(_ o: [String: Any], _ path: [String]) -> Any? {
        var cur: Any? = o
        for k in path { cur = (cur as? [String: Any])?[k] }
        return cur
    }

    static func same(_ json: Any?, _ v: StatusValue) -> Bool {
        switch v {
        case .null: return json is NSNull
        case .string(let s): return json as? String == s
        case .bool(let b): return (json as? Bool) == b && !(json is Int && !(json is Bool))
        default:
            guard let n = json as? NSNumber, let want = v.number else { return false }
            return abs(n.doubleValue - want) <= abs(want) * 1e-9
        }
    }

    /// A stored property left out of CodingKeys would vanish from every view at once.
    @Test func everyStoredPropertyIsEncoded() throws {
        let s = try Self.filled()
        let udp = try #require(s.lb.udp), ingress = try #require(s.lb.ingress)
        let values: [(String, Any, StatusValue)] = [
            ("StatusSnapshot", s, StatusEncoder.encode(s)), ("LBStatus", s.lb, StatusEncoder.encode(s.lb)),
            ("RingStatus", s.rings[0], StatusEncoder.encode(s.rings[0])), ("UDPStatus", udp, StatusEncoder.encode(udp)),
            ("VNICount", udp.vniTop[0], StatusEncoder.encode(udp.vniTop[0])), ("IngressStatus", ingress, StatusEncoder.encode(ingress)),
        ]
        for (name, value, encoded) in values {
            guard case .object(let members) = encoded else { Issue.record("\(name) does not encode as an object"); continue }
            #expect(Mirror(reflecting: value).children.count == members.count, "\(name): stored properties and encoded keys differ")
        }
        // every optional is set and no number repeats: a view showing the wrong field is caught
        let numbers = Self.leaves(s.lb).compactMap { $0.value.number } + s.rings.flatMap { Self.leaves($0).compactMap { $0.value.number } }
        #expect(!Self.leaves(s.lb).contains { $0.value == .null })
        #expect(Set(numbers.filter { $0 > 1 }).count == numbers.filter { $0 > 1 }.count)
    }

    /// What lb sends a stats client reads back as the same snapshot.
    @Test func snapshotRoundTrips() throws {
        let s = try Self.filled()
        let back = try JSONDecoder().decode(StatusSnapshot.self, from: Data(StatusEncoder.encode(s).json.utf8))
        #expect(back == s)
    }

    @Test func jsonLinesShowEveryField() throws {
        let s = try Self.filled()
        let lines = StatusLines.render(s, previous: nil, final: true)
        #expect(lines.count == s.rings.count + 1)
        let objects = try lines.map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "\($0)") }
        for (r, o) in zip(s.rings, objects) {
            for (path, v) in Self.leaves(r) { #expect(Self.same(Self.lookup(o, path), v), "ring line: \(path) should be \(v)") }
            for k in ["ts", "packet_forward_rate_kpps", "data_forward_rate_Mbps", "overflow_queue_size"] { #expect(o[k] != nil) }
        }
        let lb = try #require(objects.last)
        #expect(lb["output_ring"] is NSNull && lb["final"] as? Bool == true)
        for (path, v) in Self.leaves(s.lb) { #expect(Self.same(Self.lookup(lb, path), v), "lb line: \(path) should be \(v)") }
    }

    @Test func textShowsEveryField() throws {
        let s = try Self.filled()
        let text = StatsText.render(s, previous: nil, all: true)
        for (path, v) in Self.leaves(s.lb) + s.rings.flatMap({ Self.leaves($0) }) {
            #expect(text.contains(path.joined(separator: ".") + " " + StatsText.text(v)), "lb stats does not show \(path)")
        }
    }

    /// Every number has a family in the catalog and a sample with its value and labels.
    @Test func prometheusShowsEveryNumber() throws {
        let s = try Self.filled()
        let text = Prometheus.render(s, openMetrics: false)
        func sample(_ spec: MetricSpec, _ labels: [(String, String)], _ v: StatusValue) -> String {
            spec.name + (labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}")
                + " " + (Prometheus.Exposition.value(v) ?? "?") + "\n"
        }
        for (path, v) in Self.leaves(s.lb) where v.number != nil {
            let spec = try #require(PrometheusCatalog.spec(lb: path), "no Prometheus family for lb field \(path)")
            #expect(text.contains(sample(spec, spec.labels(path), v)), "no sample for \(path) (\(spec.name))")
        }
        for r in s.rings {
            for (path, v) in Self.leaves(r) where v.number != nil && !PrometheusCatalog.ringLabels.contains(path.joined(separator: ".")) {
                let spec = try #require(PrometheusCatalog.spec(ring: path), "no Prometheus family for ring field \(path)")
                let labels = [("group", r.group), ("ring", String(r.ring))] + spec.labels(path)
                #expect(text.contains(sample(spec, labels, v)), "no sample for ring \(r.interface) \(path) (\(spec.name))")
            }
        }
        // counters are named *_total, nothing else is
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let f = line.split(separator: " ")
            #expect((f[3] == "counter") == f[2].hasSuffix("_total"), "\(line)")
        }
    }
}

/// The same parity on a running lb with two groups (one ring without a consumer), and the
/// exposition checked by promtool and by a strict OpenMetrics parser (Debian's
/// python3-prometheus-client).
@Suite(.serialized) struct StatusViewsTests {
    @Test func everyViewOfARunningLB() throws {
        let scratch = try Scratch("views")
        let dir = scratch.path, runDir = dir + "/run"
        let trace = try Ops.trace(in: dir, packets: 20000, flows: 200)
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:2", "-p", "b:1", "--run-dir", runDir, "-w", "1", "-o", "0.5",
                                   "--replay-rate", "2000", "--metrics", "127.0.0.1:0"], in: dir, label: "lb")
        var cats: [Proc] = []
        for k in 0..<2 { cats.append(try Proc(Ops.lb, ["cat", "a:\(k)", "-w", "/dev/null", "--run-dir", runDir], in: dir, label: "cat\(k)")) }
        defer { lb.stop(); for c in cats { c.stop() } }
        let port = try MetricsTests.metricsPort(lb)
        #expect(try eventually(20) { (try? Ops.stats(runDir: runDir, in: dir))?["a:1"]?.int("packets_forwarded") ?? 0 > 0 })

        // the snapshot itself, as a client decodes it
        let answer = try StatsClient.fetch(socket: runDir + "/a.sock")
        let snap = try JSONDecoder().decode(StatusSnapshot.self, from: Data(answer.lines.joined(separator: "\n").utf8))
        #expect(snap.rings.map(\.interface) == ["a:0", "a:1", "b:0"])
        let present = StatusParityTests.leaves(snap.lb).filter { $0.value != .null }
        let ringPresent = snap.rings.map { r in (r, StatusParityTests.leaves(r).filter { $0.value != .null }) }

        // lb stats --json and -o: every field there
        func checkLines(_ text: String, _ what: String) throws {
            var rings: [String: [String: Any]] = [:], lbLine: [String: Any] = [:]
            for line in text.split(separator: "\n") {
                let o = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                if o["output_ring"] is NSNull { lbLine = o } else { rings[o["interface"] as? String ?? ""] = o }
            }
            for (path, _) in present { #expect(StatusParityTests.lookup(lbLine, path) != nil, "\(what): lb line lacks \(path)") }
            for (r, leaves) in ringPresent {
                let o = try #require(rings[r.interface], "\(what): no line for \(r.interface)")
                for (path, _) in leaves { #expect(StatusParityTests.lookup(o, path) != nil, "\(what): \(r.interface) lacks \(path)") }
            }
        }
        let (s1, json, e1) = try Proc.run(Ops.lb, ["stats", "--json", "--run-dir", runDir], in: dir, label: "stats-json")
        #expect(s1 == 0, "\(e1)")
        try checkLines(json, "lb stats --json")
        let (s2, text, e2) = try Proc.run(Ops.lb, ["stats", "--all", "--run-dir", runDir], in: dir, label: "stats-all")
        #expect(s2 == 0, "\(e2)")
        for (path, _) in present + ringPresent.flatMap(\.1) { #expect(text.contains(path.joined(separator: ".") + " "), "lb stats lacks \(path)") }

        // Prometheus, both formats
        let (c1, prom) = try MetricsTests.curl("http://127.0.0.1:\(port)/metrics", in: dir)
        #expect(c1 == 0)
        for (path, v) in present where v.number != nil {
            let spec = try #require(PrometheusCatalog.spec(lb: path))
            #expect(prom.contains("\n" + spec.name), "the scrape lacks \(spec.name) (\(path))")
        }
        for (r, leaves) in ringPresent {
            for (path, v) in leaves where v.number != nil && !PrometheusCatalog.ringLabels.contains(path.joined(separator: ".")) {
                let spec = try #require(PrometheusCatalog.spec(ring: path))
                #expect(prom.contains("\n\(spec.name){group=\"\(r.group)\",ring=\"\(r.ring)\""), "the scrape lacks \(spec.name) of \(r.interface)")
            }
        }
        try prom.write(toFile: dir + "/metrics.txt", atomically: true, encoding: .utf8)
        let (p1, pout, perr) = try Proc.run("/bin/sh", ["-c", "promtool check metrics < \(dir)/metrics.txt"], in: dir, label: "promtool")
        #expect(p1 == 0, "promtool check metrics: \(pout) \(perr)")
        let (c2, om, _) = try Proc.run("/usr/bin/curl", ["-s", "-f", "--max-time", "5", "-H",
                                                         "Accept: application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5",
                                                         "http://127.0.0.1:\(port)/metrics"], in: dir, label: "curl-om")
        #expect(c2 == 0 && om.hasSuffix("# EOF\n"))
        try om.write(toFile: dir + "/metrics.om", atomically: true, encoding: .utf8)
        // the strict parsers: OpenMetrics (rejects interleaved families, counters without
        // _total samples, a missing # EOF) and the classic text parser
        let script = """
            import sys
            from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
            from prometheus_client.parser import text_string_to_metric_families as text
            a = sum(len(f.samples) for f in om(open(sys.argv[1]).read()))
            b = sum(len(f.samples) for f in text(open(sys.argv[2]).read()))
            print(a, b)
            """
        let (py, counts, pyerr) = try Proc.run("/usr/bin/python3", ["-c", script, dir + "/metrics.om", dir + "/metrics.txt"], in: dir, label: "python")
        #expect(py == 0, "the OpenMetrics parser refused lb's exposition: \(pyerr)")
        let n = counts.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(n.count == 2 && n[0] > 100 && n[1] > 100, "\(counts)")

        // and the -o lines, at the end (the replay goes on until stopped)
        lb.signal(SIGINT)
        try lb.wait(seconds: 30)
        let final = lb.stdout.split(separator: "\n").suffix(snap.rings.count + 1).joined(separator: "\n")
        try checkLines(final, "-o")
    }
}
