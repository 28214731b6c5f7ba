import Foundation
import Testing

/// The real Prometheus server (Debian's /usr/bin/prometheus) scrapes lb's --metrics endpoint;
/// the test reads a metric back through Prometheus' HTTP API.
@Suite(.serialized) struct MetricsTests {
    static func curl(_ url: String, in dir: String) throws -> (Int32, String) {
        let (s, out, _) = try Proc.run("/usr/bin/curl", ["-s", "-f", "--max-time", "5", url], in: dir,
                                       label: "curl-\(UInt32.random(in: 0...UInt32.max))")
        return (s, out)
    }

    /// lb replaying `trace` into a:1 (waiting for a consumer) with --metrics ADDRESS:0, and the
    /// port it says it got.
    static func lbServingMetrics(trace: String, address: String, in dir: String) throws -> (Proc, String) {
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:1", "--run-dir", dir + "/run", "-w", "60",
                                   "--metrics", address + ":0"], in: dir, label: "lb")
        return (lb, try metricsPort(lb, address: address))
    }

    /// The port lb says it serves metrics on (it picks one with port 0).
    static func metricsPort(_ lb: Proc, address: String = "127.0.0.1") throws -> String {
        var port = ""
        let said = try eventually(20) {
            guard let r = lb.stderr.range(of: "metrics at http://\(address):") else { return false }
            port = String(lb.stderr[r.upperBound...].prefix { $0.isNumber })
            return !port.isEmpty
        }
        #expect(said, "lb did not say where it serves metrics: \(lb.stderr)")
        return port
    }

    /// Bad or idle clients get an error or are dropped; lb keeps answering.
    /// A TCP connection to 127.0.0.1:PORT (the descriptor; the caller closes it).
    static func connectTCP(_ port: String) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = UInt16(port)!.bigEndian
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        return fd
    }

    @Test func badClientsDoNotStopTheEndpoint() throws {
        let scratch = try Scratch("metrics-bad")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 100, flows: 10)
        let (lb, port) = try Self.lbServingMetrics(trace: trace, address: "127.0.0.1", in: dir)
        defer { lb.stop() }
        let base = "http://127.0.0.1:\(port)"
        let (s404, _, _) = try Proc.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", base + "/nope"],
                                        in: dir, label: "curl-404")
        #expect(s404 == 0)
        let (_, code, _) = try Proc.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "-X", "POST",
                                                          base + "/metrics"], in: dir, label: "curl-post")
        #expect(code == "404")
        // 40 connections that send nothing, and one that sends garbage without an end.
        var idle: [Int32] = []
        defer { for fd in idle { close(fd) } }
        for _ in 0..<41 { idle.append(Self.connectTCP(port)) }
        _ = write(idle[40], "GARBAGE", 7)
        var answered = false
        #expect(try eventually(10) {
            let (s, out, _) = try Proc.run("/usr/bin/curl", ["-s", "-f", "--max-time", "2", base + "/metrics"], in: dir, label: "curl-after")
            answered = s == 0 && out.contains("lb_up")
            return answered
        }, "lb stopped answering after idle and garbage clients")
        #expect(lb.isRunning)
    }

    /// 200 connections that hold their place (slowloris) do not keep a scrape out: every scrape
    /// made while they are open is answered at the first try.
    @Test func slowlorisDoesNotKeepScrapesOut() throws {
        let scratch = try Scratch("metrics-slowloris")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 100, flows: 10)
        let (lb, port) = try Self.lbServingMetrics(trace: trace, address: "127.0.0.1", in: dir)
        defer { lb.stop() }
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        for _ in 0..<200 {
            let fd = Self.connectTCP(port)
            _ = send(fd, "GET /metrics HTTP/1.1\r\nX-Slow: ", 32, Int32(MSG_NOSIGNAL))
            held.append(fd)
        }
        for k in 0..<5 {
            let (s, out, _) = try Proc.run("/usr/bin/curl", ["-s", "-f", "--max-time", "1", "http://127.0.0.1:\(port)/metrics"], in: dir,
                                           label: "curl-\(k)")
            #expect(s == 0 && out.contains("lb_up"), "scrape \(k) failed behind 200 held connections")
            for fd in held.prefix(20) { _ = send(fd, "a", 1, Int32(MSG_NOSIGNAL)) }      // they trickle (lb may have closed them)
        }
    }

    /// An IPv6 listen address, in brackets; a malformed one is refused with the usage.
    @Test func listensOnIPv6() throws {
        let scratch = try Scratch("metrics-v6")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 100, flows: 10)
        let bad = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:1", "--run-dir", dir + "/run-bad", "-w", "1",
                                    "--metrics", "[::1:9917"], in: dir, label: "lb-bad")
        #expect(try eventually(20) { !bad.isRunning })
        #expect(bad.stderr.contains("[ADDR]:PORT"), "\(bad.stderr)")
        let (lb, port) = try Self.lbServingMetrics(trace: trace, address: "[::1]", in: dir)
        defer { lb.stop() }
        let (s, out, _) = try Proc.run("/usr/bin/curl", ["-g", "-s", "-f", "--max-time", "5", "http://[::1]:\(port)/metrics"],
                                       in: dir, label: "curl-v6")
        #expect(s == 0)
        #expect(out.contains("lb_up"), "\(out.prefix(300))")
    }

    @Test func prometheusScrapesLB() throws {
        #expect(FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus"), "prometheus is not installed (scripts/setup installs it)")
        let scratch = try Scratch("metrics")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 30000, flows: 300)
        let runDir = dir + "/run"
        // several groups; b:0 has no consumer (its drops must show)
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:2", "-p", "b:1", "--run-dir", runDir, "-w", "5", "--replay-rate", "500",
                                   "--metrics", "127.0.0.1:0"], in: dir, label: "lb")
        var cats: [Proc] = []
        for k in 0..<2 { cats.append(try Proc(Ops.lb, ["cat", "a:\(k)", "-w", "/dev/null", "--run-dir", runDir], in: dir, label: "cat\(k)")) }
        defer { lb.stop(); for c in cats { c.stop() } }

        let port = try Self.metricsPort(lb)
        // lb's own endpoint answers the text format.
        let (s, text) = try Self.curl("http://127.0.0.1:\(port)/metrics", in: dir)
        #expect(s == 0 && text.contains("# TYPE lb_ring_packets_forwarded_total counter"), "\(text.prefix(300))")
        #expect(text.contains("lb_ring_packets_dropped_total{group=\"a\",ring=\"1\",reason=\"no_consumer\"}"))
        // Every family stands together, HELP and TYPE once, before its samples (the exposition
        // format requires it; promtool does not check it, strict OpenMetrics parsers do).
        var seen: Set<String> = [], current = ""
        for line in text.split(separator: "\n") {
            let name: String
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                name = String(line.split(separator: " ")[2])
                if line.hasPrefix("# HELP ") {
                    #expect(!seen.contains(name), "family \(name) declared twice")
                    seen.insert(name)
                }
            } else {
                name = String(line.prefix { $0 != "{" && $0 != " " })
                #expect(name == current, "a sample of \(name) outside its family (after \(current))")
            }
            current = name
        }
        #expect(seen.count > 20)

        // Every metric the example Grafana dashboard uses is one lb serves.
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dashboard = try String(contentsOfFile: repo.path + "/contrib/grafana/lb-dashboard.json", encoding: .utf8)
        let names = Set(dashboard.matches(of: /lb_[a-z_]+/).map { String($0.output) })
        #expect(names.count > 8)
        for n in names { #expect(text.contains("# TYPE \(n) "), "the dashboard uses \(n), which lb does not serve") }

        let promPort = Ops.freePort()
        let config = """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: lb
                scrape_interval: 1s
                static_configs:
                  - targets: ['127.0.0.1:\(port)']
            """
        try config.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prom = try Proc("/usr/bin/prometheus", ["--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/tsdb",
                                                    "--web.listen-address=127.0.0.1:\(promPort)"], in: dir, label: "prometheus")
        defer { prom.stop() }
        let query = "http://127.0.0.1:\(promPort)/api/v1/query?query=lb_ring_packets_forwarded_total%7Bgroup%3D%22a%22%2Cring%3D%221%22%7D"
        var answer = ""
        let got = try eventually(60) {
            guard prom.isRunning else { return false }
            let (s, out) = try Self.curl(query, in: dir)
            answer = out
            guard s == 0, let o = try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
                  let data = o["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
                  let first = result.first, let value = first["value"] as? [Any], value.count == 2,
                  let v = Double(value[1] as? String ?? "") else { return false }
            return v > 0
        }
        #expect(got, "Prometheus never returned lb_ring_packets_forwarded_total{group=\"a\",ring=\"1\"} > 0: \(answer) \(prom.stderr.suffix(500))")
        // every ring of every group is a series Prometheus stored
        let count = "http://127.0.0.1:\(promPort)/api/v1/query?query=count(lb_ring_packets_forwarded_total)%20and%20on()%20lb_ring_packets_dropped_total%7Bgroup%3D%22b%22%2Creason%3D%22no_consumer%22%7D%20%3E%200"
        let all = try eventually(30) {
            let (s, out) = try Self.curl(count, in: dir)
            answer = out
            return s == 0 && out.contains("\"3\"")
        }
        #expect(all, "Prometheus does not hold 3 rings with b:0's drops: \(answer)")
    }
}
