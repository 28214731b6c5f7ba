import Foundation
import Glibc
import LBCore
import LBGen
import LBTestSupport
import Testing

/// lb as an ordinary user (uid 65534) on a UDP socket, three `lb cat` consumers (same user),
/// real traffic. Namespaces and interfaces are named lbu-* / lbu* with the test's pid.
@Suite(.serialized) struct UDPEndToEndTests {
    static let nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]

    /// lb and its consumers for one run.
    final class Run {
        let dir: Scratch
        let rings: Int
        var lb: ChildProcess? = nil
        var cats: [ChildProcess] = []

        let group: String

        init(_ label: String, rings: Int, group: String = "t") throws {
            dir = try Scratch("udp-" + label)
            // everyone may write there (lb runs as nobody), and the run directory belongs to
            // nobody (lb refuses one that others could write into)
            chmod(dir.path, 0o777)
            try FileManager.default.createDirectory(atPath: dir.path + "/run", withIntermediateDirectories: true)
            chown(dir.path + "/run", 65534, 65534)
            chmod(dir.path + "/run", 0o755)
            self.rings = rings
            self.group = group
        }

        var run: String { dir.path + "/run" }
        func pcap(_ k: Int) -> String { dir.path + "/t.\(k).pcap" }

        /// Starts the consumers, then lb (in `netns` if given), as nobody; waits until every
        /// ring has its consumer.
        func start(input: String, netns: String? = nil, extra: [String] = []) throws {
            for k in 0..<rings {
                cats.append(try ChildProcess(UDPEndToEndTests.nobody[0], Array(UDPEndToEndTests.nobody.dropFirst())
                    + [Paths.lb, "cat", "\(group):\(k)", "-w", pcap(k), "--run-dir", run, "--wait", "60"],
                    stdout: dir.path + "/cat\(k).out", stderr: dir.path + "/cat\(k).err"))
            }
            var argv = UDPEndToEndTests.nobody + [Paths.lb, "-i", input, "-p", "\(group):\(rings)", "-w", "60", "--run-dir", run, "-o", "0.2"] + extra
            if let netns { argv = ["/usr/sbin/ip", "netns", "exec", netns] + argv }
            lb = try ChildProcess(argv[0], Array(argv.dropFirst()), stdout: dir.path + "/lb.out", stderr: dir.path + "/lb.err")
            let lb = self.lb!
            try waitFor("every consumer to attach", seconds: 60) {
                !lb.isRunning || ChildProcess.readFile(self.dir.path + "/lb.err").components(separatedBy: "consumer attached").count - 1 == self.rings
            }
            guard lb.isRunning else { throw TestFailure("lb exited at start: \(lbErr)") }
        }

        var lbErr: String { ChildProcess.readFile(dir.path + "/lb.err") }

        /// lb's latest aggregate stats line.
        func stats() -> [String: Any]? {
            let lines = ChildProcess.readFile(dir.path + "/lb.out").split(separator: "\n")
            for line in lines.reversed() {
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
                if o["packets_received"] != nil { return o }
            }
            return nil
        }

        func udp(_ key: String) -> UInt64 { ((stats()?["udp"] as? [String: Any])?[key] as? NSNumber)?.uint64Value ?? 0 }

        /// Stops lb (SIGTERM), waits for it and the consumers; returns lb's final aggregate line.
        func stop() throws -> [String: Any] {
            guard let lb else { throw TestFailure("lb not started") }
            lb.signal(SIGTERM)
            let status = try lb.wait(seconds: 30)
            guard status == 0 else { throw TestFailure("lb exited \(status): \(lbErr)") }
            for (k, c) in cats.enumerated() {
                let s = try c.wait(seconds: 30)
                guard s == 0 else { throw TestFailure("lb cat t:\(k) exited \(s): \(ChildProcess.readFile(dir.path + "/cat\(k).err"))") }
            }
            guard let final = stats(), final["final"] as? Bool == true else { throw TestFailure("no final stats from lb") }
            return final
        }

        /// Kills whatever still runs (a failed test).
        func kill() {
            for c in [lb].compactMap({ $0 }) + cats where c.isRunning {
                c.signal(SIGKILL)
                _ = try? c.wait(seconds: 5)
            }
        }

        /// The packets each consumer wrote.
        func delivered() throws -> [[CapturedFrame]] { try (0..<rings).map { try readCapture(pcap($0)) } }
    }

    static func waitFor(_ what: String, seconds: Double, _ cond: () -> Bool) throws {
        guard eventually(seconds, every: 0.02, cond) else { throw TestFailure("timed out waiting for \(what)") }
    }

    /// Every flow (both directions as one) appears in exactly one consumer's file; returns the
    /// flows with the ring and packet count of each.
    static func flowsNotSplit(_ rings: [[CapturedFrame]]) -> [FlowTuple: (ring: Int, packets: Int)] {
        let decoder = Decoder(DecodeConfig())
        var flows: [FlowTuple: (ring: Int, packets: Int)] = [:]
        for (k, packets) in rings.enumerated() {
            for p in packets {
                let d = p.bytes.withUnsafeBytes { decoder.decode($0, link: LinkType(rawValue: p.linkType) ?? .ethernet) }
                let t = FlowTuple(d.key)
                if let seen = flows[t] {
                    #expect(seen.ring == k, "flow \(t) split over rings \(seen.ring) and \(k)")
                    flows[t] = (seen.ring, seen.packets + 1)
                } else {
                    flows[t] = (k, 1)
                }
            }
        }
        return flows
    }

    // MARK: A Linux vxlan device mirroring real traffic

    /// Namespaces: C (client) — M (server; mirrors its veth to C, both directions, into a vxlan
    /// device, VNI 1, dstport 4789, remote = L) — L (lb as nobody on udp::ADDR:4789:vxlan).
    @Test func mirroredTrafficFromAVXLANDevice() throws {
        let id = getpid()
        let c = "lbu-c-\(id)", m = "lbu-m-\(id)", l = "lbu-l-\(id)"
        let cm = "lbuc\(id)", mc = "lbum\(id)", ml = "lbux\(id)", lm = "lbul\(id)", vx = "lbuv\(id)"
        defer { for ns in [c, m, l] { _ = try? sh("ip netns del \(ns) 2>/dev/null") } }
        for ns in [c, m, l] {
            try sh("ip netns add \(ns)")
            try sh("ip netns exec \(ns) sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")
            try sh("ip -n \(ns) link set lo up")
        }
        try sh("ip link add \(cm) netns \(c) type veth peer name \(mc) netns \(m)")
        try sh("ip link add \(ml) netns \(m) type veth peer name \(lm) netns \(l)")
        try sh("ip -n \(c) addr add 10.77.1.1/24 dev \(cm) && ip -n \(c) link set \(cm) up")
        try sh("ip -n \(m) addr add 10.77.1.2/24 dev \(mc) && ip -n \(m) link set \(mc) up")
        try sh("ip -n \(m) addr add 10.77.2.1/24 dev \(ml) && ip -n \(m) link set \(ml) up")
        try sh("ip -n \(l) addr add 10.77.2.2/24 dev \(lm) && ip -n \(l) link set \(lm) up")
        // one mirrored frame is one datagram: no segmentation offloads on the mirrored link, and
        // room for a full frame plus VXLAN on the link to lb
        for (ns, dev) in [(c, cm), (m, mc)] { try sh("ip netns exec \(ns) ethtool -K \(dev) tso off gso off gro off >/dev/null 2>&1 || true") }
        try sh("ip -n \(m) link set \(ml) mtu 9000 && ip -n \(l) link set \(lm) mtu 9000")
        try sh("ip -n \(m) link add \(vx) type vxlan id 1 dstport 4789 remote 10.77.2.2 local 10.77.2.1 dev \(ml)")
        try sh("ip -n \(m) link set \(vx) up")
        try sh("tc -n \(m) qdisc add dev \(mc) clsact")
        try sh("tc -n \(m) filter add dev \(mc) ingress protocol all u32 match u32 0 0 action mirred egress mirror dev \(vx)")
        try sh("tc -n \(m) filter add dev \(mc) egress protocol all u32 match u32 0 0 action mirred egress mirror dev \(vx)")
        // resolve the mirror target's neighbour before counting starts
        try sh("ip netns exec \(m) ping -c 1 -W 2 10.77.2.2 >/dev/null")

        let run = try Run("vx", rings: 3)
        defer { run.kill() }
        try run.start(input: "udp::10.77.2.2:4789:vxlan", netns: l)
        // lb really runs as the ordinary user
        let status = ChildProcess.readFile("/proc/\(run.lb!.pid)/status")
        #expect(status.contains("Uid:\t65534\t65534\t65534\t65534"), "lb is not running as uid 65534: \(status.prefix(400))")
        let txBefore = try Self.txPackets(m, vx)

        // ping, a TCP transfer, DNS-like UDP queries and answers
        let server = try ChildProcess("/usr/sbin/ip", ["netns", "exec", m, "python3", "-c", Self.serverScript],
                                      stdout: run.dir.path + "/server.out", stderr: run.dir.path + "/server.err")
        defer { if server.isRunning { server.signal(SIGKILL); _ = try? server.wait(seconds: 5) } }
        try Self.waitFor("the server", seconds: 20) { ChildProcess.readFile(run.dir.path + "/server.out").contains("ready") }
        try sh("ip netns exec \(c) ping -c 5 -i 0.2 -W 2 10.77.1.2 >/dev/null")
        let client = try sh("ip netns exec \(c) python3 -c '\(Self.clientScript)'")
        #expect(client.contains("tcp 300000") && client.contains("dns 3"), "client: \(client)")
        _ = try server.wait(seconds: 20)

        // everything the vxlan device sent reaches lb
        var tx: UInt64 = 0
        do {
            try Self.waitFor("lb to receive what the vxlan device sent", seconds: 20) {
                tx = ((try? Self.txPackets(m, vx)) ?? 0) - txBefore
                return tx > 0 && run.udp("datagrams_received") == tx
            }
        } catch {
            throw TestFailure("\(error): the device sent \(tx), lb received \(run.udp("datagrams_received")); lb: \(run.lbErr)")
        }
        let final = try run.stop()
        let udp = try #require(final["udp"] as? [String: Any])
        #expect((udp["datagrams_rejected"] as? NSNumber)?.uint64Value == 0)
        #expect((udp["kernel_drops"] as? NSNumber)?.uint64Value == 0)
        // an ordinary user cannot exceed net.core.rmem_max: lb says what it got
        let rmemMax = UInt64(try sh("sysctl -n net.core.rmem_max").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect((udp["rcvbuf_granted"] as? NSNumber)?.uint64Value == min(64 << 20, rmemMax))
        if rmemMax < 64 << 20 { #expect(run.lbErr.contains("the kernel gave"), "no log line about the capped socket buffer") }
        let vnis = try #require(udp["vni_top"] as? [[String: Any]])
        #expect(vnis.count == 1 && (vnis.first?["vni"] as? NSNumber)?.intValue == 1
                && (vnis.first?["packets"] as? NSNumber)?.uint64Value == tx)
        #expect((final["packets_received"] as? NSNumber)?.uint64Value == tx)
        #expect((final["packets_forwarded"] as? NSNumber)?.uint64Value == tx)
        #expect((final["packets_dropped"] as? NSNumber)?.uint64Value == 0)

        let rings = try run.delivered()
        #expect(UInt64(rings.reduce(0) { $0 + $1.count }) == tx, "the consumers got \(rings.map(\.count)), the device sent \(tx)")
        // decapsulated: the client/server packets themselves, no VXLAN left
        let decoder = Decoder(DecodeConfig())
        var icmp = 0, tcp = 0, dns = 0
        for p in rings.joined() {
            let d = p.bytes.withUnsafeBytes { decoder.decode($0, link: .ethernet) }
            #expect(d.depth == 0, "a delivered packet still has a tunnel")
            let addrs: Set<UInt64> = [d.key.srcLo, d.key.dstLo]
            guard addrs == [FlowKey.v4Mapped(0x0A4D_0101), FlowKey.v4Mapped(0x0A4D_0102)] else { continue }
            switch d.key.proto {
            case 1: icmp += 1
            case 6 where d.key.sport == 8080 || d.key.dport == 8080: tcp += 1
            case 17 where d.key.sport == 53 || d.key.dport == 53: dns += 1
            default: break
            }
        }
        #expect(icmp == 10 && dns == 6 && tcp >= 20, "icmp \(icmp) dns \(dns) tcp \(tcp)")
        let flows = Self.flowsNotSplit(rings)
        #expect(flows.count >= 6)      // ARP, ICMP, TCP, three DNS-like flows
        #expect(Set(flows.values.map(\.ring)).count >= 2, "all flows went to one ring: the test cannot show a split")
    }

    static func txPackets(_ ns: String, _ dev: String) throws -> UInt64 {
        let out = try sh("ip -n \(ns) -s -j link show \(dev)")
        guard let arr = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]],
              let stats = arr.first?["stats64"] as? [String: Any], let tx = stats["tx"] as? [String: Any],
              let n = (tx["packets"] as? NSNumber)?.uint64Value else { throw TestFailure("no tx stats for \(dev): \(out)") }
        return n
    }

    static let serverScript = """
    import socket, threading
    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("10.77.1.2", 8080)); t.listen(1)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.77.1.2", 53))
    def dns():
        for _ in range(3):
            q, a = u.recvfrom(512); u.sendto(q[:2] + b"\\x81\\x80" + q[4:], a)
    th = threading.Thread(target=dns); th.start()
    print("ready", flush=True)
    c, _ = t.accept(); n = 0
    while True:
        b = c.recv(65536)
        if not b: break
        n += len(b)
    c.sendall(b"got %d" % n); c.close(); th.join()
    """

    /// Fixed client ports: where the flows land is then the same in every run (ephemeral ports
    /// put all six flows into one of the three rings about once in a hundred runs).
    static let clientScript = """
    import socket
    s = socket.create_connection(("10.77.1.2", 8080), source_address=("10.77.1.1", 40100)); s.sendall(bytes(300000)); s.shutdown(socket.SHUT_WR)
    r = s.recv(100); print("tcp", r.split()[1].decode())
    n = 0
    for i in range(3):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5); u.bind(("10.77.1.1", 40200 + i))
        u.sendto(bytes([0x12, i]) + bytes.fromhex("01000001000000000000") + b"\\x07example\\x03com\\x00\\x00\\x01\\x00\\x01", ("10.77.1.2", 53))
        u.recvfrom(512); n += 1
    print("dns", n)
    """

    // MARK: GENEVE and GENEVE+VXLAN: corpus packets re-sent as datagrams

    /// The corpus's encapsulated frames, as GENEVE payloads (the inner Ethernet frame of each
    /// VXLAN packet, and the GENEVE payload of each GENEVE packet), and as GENEVE+VXLAN
    /// payloads (each VXLAN packet's outer IP packet inside GENEVE, as AWS GWLB sends them).
    /// Returns (datagram, the original frame it stands for).
    static func corpusDatagrams(geneveVXLAN: Bool) throws -> [([UInt8], [UInt8])] {
        var out: [([UInt8], [UInt8])] = []
        let dir = Paths.corpus + "/traces/tunnels/"
        for name in ["vxlan.pcap", "vxlan-encapsulated-http.pcap", "vxlan-inner-tcp-bad-checksum.pcap"] {
            for f in try readCapture(dir + name) {
                guard let u = udpPayload(f.bytes), u.dport == 4789, u.payload.count > 8 else { continue }
                if geneveVXLAN {
                    let ip = Array(f.bytes[14...])          // the corpus VXLAN frames are untagged
                    out.append((PacketBuilder.build(.geneve(vni: 77, proto: ip[0] >> 4 == 6 ? 0x86DD : 0x0800), .payload(ip)), f.bytes))
                } else {
                    let inner = Array(u.payload[8...])
                    out.append((PacketBuilder.build(.geneve(vni: 66, options: [GeneveOption()]), .payload(inner)), f.bytes))
                }
            }
        }
        if !geneveVXLAN {
            for f in try readCapture(dir + "geneve-ipv6.pcap") {
                guard let u = udpPayload(f.bytes), u.dport == 6081 else { continue }
                out.append((u.payload, f.bytes))
            }
        }
        if out.count < 20 { throw TestFailure("only \(out.count) corpus packets for the test") }
        return out
    }

    static func freePort() throws -> UInt16 {
        let s = try DatagramSender(to: "127.0.0.1", port: 9, from: 0)
        _ = try? s.send([0])          // binds it to an ephemeral port
        return s.port
    }

    @Test(arguments: ["geneve", "geneve+vxlan"])
    func corpusPacketsResentAsDatagrams(_ encap: String) throws {
        let datagrams = try Self.corpusDatagrams(geneveVXLAN: encap == "geneve+vxlan")
        let port = try Self.freePort()
        let run = try Run(encap == "geneve" ? "gn" : "gv", rings: 3)
        defer { run.kill() }
        try run.start(input: "udp::127.0.0.1:\(port):\(encap)")
        let sender = try DatagramSender(to: "127.0.0.1", port: port)
        // each twice, so that every flow has several packets; and malformed ones in between
        let bad: [[UInt8]] = [[0, 0, 0x65], PacketBuilder.build(.geneve(vni: 1, version: 2), .payload([1, 2, 3, 4])),
                              PacketBuilder.build(.geneve(vni: 1, options: [GeneveOption()], critical: true), .ethernet())]
        var sent = 0
        for round in 0..<2 {
            for (i, (d, _)) in datagrams.enumerated() {
                try sender.send(d)
                sent += 1
                if i % 10 == 0 { try sender.send(bad[(i / 10 + round) % bad.count]) }
            }
        }
        try Self.waitFor("lb to take every datagram", seconds: 20) {
            run.udp("datagrams_received") == UInt64(sent) + run.udp("datagrams_rejected") && run.udp("datagrams_accepted") == UInt64(sent)
        }
        let final = try run.stop()
        let udp = try #require(final["udp"] as? [String: Any])
        let rejected = try #require(udp["rejected"] as? [String: Any])
        let badSent = (0..<2).flatMap { round in datagrams.indices.filter { $0 % 10 == 0 }.map { (($0 / 10) + round) % bad.count } }
        #expect((rejected["short"] as? NSNumber)?.intValue == badSent.filter { $0 == 0 }.count)
        #expect((rejected["geneve_version"] as? NSNumber)?.intValue == badSent.filter { $0 == 1 }.count)
        #expect((rejected["geneve_critical_option"] as? NSNumber)?.intValue == badSent.filter { $0 == 2 }.count)
        #expect((final["packets_forwarded"] as? NSNumber)?.intValue == sent)

        // what the consumers got is exactly what lb delivers for the original frames from a capture
        let rings = try run.delivered()
        #expect(rings.reduce(0) { $0 + $1.count } == sent)
        let decoder = Decoder(DecodeConfig())
        var want: [[UInt8]: Int] = [:]
        for (_, frame) in datagrams {
            let d = frame.withUnsafeBytes { decoder.decode($0, link: .ethernet) }
            #expect(d.depth >= 1)
            // compared from the EtherType on: lb writes the MACs of an Ethernet header it synthesizes
            let bytes = d.synthType != 0 ? [UInt8(d.synthType >> 8), UInt8(d.synthType & 0xFF)] + frame[d.start..<d.end]
                                         : Array(frame[(d.start + 12)..<d.end])
            want[bytes, default: 0] += 2
        }
        var got: [[UInt8]: Int] = [:]
        for p in rings.joined() { got[Array(p.bytes[12...]), default: 0] += 1 }
        #expect(got == want, "the delivered packets differ from the inner packets of the corpus frames")
        let flows = Self.flowsNotSplit(rings)
        #expect(flows.count >= 3)
    }

    /// What the socket buffered before a stop is taken on the way out: lb is stopped (SIGSTOP)
    /// while datagrams are sent, then SIGTERM and SIGCONT. The first batch lb reads holds only
    /// malformed datagrams (rejected and counted), which must not end the draining.
    @Test func stopTakesWhatTheSocketBuffers() throws {
        let port = try Self.freePort()
        let run = try Run("stop", rings: 2)
        defer { run.kill() }
        try run.start(input: "udp::127.0.0.1:\(port):vxlan")
        let lb = try #require(run.lb)
        lb.signal(SIGSTOP)
        let sender = try DatagramSender(to: "127.0.0.1", port: port)
        for _ in 0..<100 { try sender.send([0, 0, 0x65]) }
        for k in 0..<100 { try sender.send(UDPValidationTests.vxlan(UInt32(k % 7))) }
        lb.signal(SIGTERM)
        lb.signal(SIGCONT)
        let final = try run.stop()
        let udp = try #require(final["udp"] as? [String: Any])
        let drops = (udp["kernel_drops"] as? NSNumber)?.intValue ?? -1
        #expect(drops == 0, "the socket buffer held them all")
        #expect((udp["datagrams_received"] as? NSNumber)?.intValue == 200, "\(final) \(run.lbErr)")
        #expect((udp["datagrams_rejected"] as? NSNumber)?.intValue == 100)
        #expect((final["packets_forwarded"] as? NSNumber)?.intValue == 100)
        #expect(try run.delivered().reduce(0) { $0 + $1.count } == 100)
    }

    // MARK: SO_REUSEPORT

    /// Two lb processes share a port with --reuseport: the kernel spreads datagrams over them by
    /// the outer header; together they take every datagram. Without --reuseport the second lb
    /// refuses to start and says why.
    @Test func twoProcessesShareAPort() throws {
        let port = try Self.freePort()
        let a = try Run("ra", rings: 2, group: "a"), b = try Run("rb", rings: 2, group: "b")
        defer { a.kill(); b.kill() }
        try a.start(input: "udp::127.0.0.1:\(port):vxlan", extra: ["--reuseport"])
        let refused = try Run("rc", rings: 1, group: "c")
        defer { refused.kill() }
        let (status, _, err) = try ChildProcess.run(Self.nobody[0], Array(Self.nobody.dropFirst()) + [Paths.lb, "-i", "udp::127.0.0.1:\(port):vxlan",
                                                                "-p", "c:1", "-w", "0", "--run-dir", refused.run], seconds: 30)
        #expect(status != 0 && err.contains("in use") && err.contains("--reuseport"), "second lb without --reuseport: \(status) \(err)")
        try b.start(input: "udp::127.0.0.1:\(port):vxlan", extra: ["--reuseport"])
        // 64 outer flows (source ports), 10 datagrams each, inner flows varying
        var sent = 0
        for s in 0..<64 {
            let sender = try DatagramSender(to: "127.0.0.1", port: port)
            for i in 0..<10 {
                try sender.send(PacketBuilder.build(.vxlan(vni: 5), .ethernet(), .ipv4(src: "10.9.0.1", dst: "10.9.0.2"),
                                                    .udp(sport: UInt16(1000 + s), dport: UInt16(2000 + i))))
                sent += 1
            }
        }
        try Self.waitFor("the two lb to take every datagram", seconds: 20) {
            a.udp("datagrams_received") + b.udp("datagrams_received") == UInt64(sent)
        }
        let fa = try a.stop(), fb = try b.stop()
        let na = (fa["packets_received"] as? NSNumber)?.intValue ?? 0, nb = (fb["packets_received"] as? NSNumber)?.intValue ?? 0
        #expect(na + nb == sent)
        #expect(na > 0 && nb > 0, "the kernel gave one lb everything (\(na), \(nb))")
        // one outer flow (one sender socket) always reaches the same lb
        #expect(na % 10 == 0 && nb % 10 == 0)
    }

    /// `--decap keep`: the worker gets the frame the datagram arrived in (outer Ethernet, IPv4,
    /// UDP to lb's port, the datagram), hashed on the inner flow.
    @Test func decapKeepDeliversTheOuterFrame() throws {
        let port = try Self.freePort()
        let run = try Run("kp", rings: 1)
        defer { run.kill() }
        try run.start(input: "udp::127.0.0.1:\(port):vxlan", extra: ["--decap", "keep"])
        let sender = try DatagramSender(to: "127.0.0.1", port: port)
        let datagrams = (0..<5).map { i in
            PacketBuilder.build(.vxlan(vni: 42), .ethernet(), .ipv4(src: "10.5.0.1", dst: "10.5.0.2"), .udp(sport: UInt16(7000 + i), dport: 53))
        }
        for d in datagrams { try sender.send(d) }
        try Self.waitFor("lb to take the datagrams", seconds: 20) { run.udp("datagrams_accepted") == 5 }
        _ = try run.stop()
        let got = try run.delivered()[0]
        try #require(got.count == 5)
        for (p, d) in zip(got, datagrams) {
            #expect(Array(p.bytes[42...]) == d, "the datagram follows the outer headers")
            #expect(p.bytes[12] == 0x08 && p.bytes[13] == 0x00 && p.bytes[23] == 17)
            #expect(Array(p.bytes[26..<34]) == [127, 0, 0, 1, 127, 0, 0, 1])
            #expect(UInt16(p.bytes[34]) << 8 | UInt16(p.bytes[35]) == sender.port)
            #expect(UInt16(p.bytes[36]) << 8 | UInt16(p.bytes[37]) == port)
            let dec = p.bytes.withUnsafeBytes { Decoder(DecodeConfig(tunnelPorts: DecodeConfig.defaultTunnelPorts + [TunnelPort(port, .vxlan)])).decode($0, link: .ethernet) }
            #expect(dec.encap == .vxlan && dec.vni == 42 && dec.error == .none)
        }
    }
}
