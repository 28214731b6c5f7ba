import Foundation
import LBCore
import LBGen
import Testing

/// Per-group policy (issue 17; docs/policy.md): a group's filter selects what tcpdump selects
/// with the same expression from an unfiltered group's output (a fragment without ports goes
/// where its first fragment went); slicing keeps the first N bytes and the wire length; the
/// tenant tag is an 802.1Q tag with the tunnel's id, checked field by field with tshark.
@Suite(.serialized) struct PolicyTests {
    /// The key of one delivered packet: its time and bytes (the same packet in two groups).
    struct Key: Hashable { let ts: UInt64; let bytes: [UInt8] }

    /// (source, destination, id, protocol) of an IP fragment that is not the first, or nil.
    static func laterFragment(_ f: [UInt8]) -> [UInt8]? { fragment(f).flatMap { $0.first ? nil : $0.datagram } }

    /// The fragment header of an Ethernet frame's IP packet (after any VLAN tags): whether it
    /// is the first fragment, and its datagram's identity; nil when it is not a fragment.
    static func fragment(_ f: [UInt8]) -> (first: Bool, datagram: [UInt8])? {
        var off = 12
        guard f.count >= 14 else { return nil }
        var type = Int(f[off]) << 8 | Int(f[off + 1])
        while type == 0x8100 || type == 0x88A8, f.count >= off + 6 {
            off += 4
            type = Int(f[off]) << 8 | Int(f[off + 1])
        }
        let l3 = off + 2
        if type == 0x0800, f.count >= l3 + 20 {
            let fo = Int(f[l3 + 6]) << 8 | Int(f[l3 + 7])
            guard fo & 0x3FFF != 0 else { return nil }
            return (fo & 0x1FFF == 0, Array(f[(l3 + 12)..<(l3 + 20)]) + [f[l3 + 4], f[l3 + 5], f[l3 + 9]])
        }
        if type == 0x86DD, f.count >= l3 + 40 {
            var next = Int(f[l3 + 6]), p = l3 + 40
            for _ in 0..<8 {
                if next == 44, f.count >= p + 8 {
                    let fo = (Int(f[p + 2]) << 8 | Int(f[p + 3])) >> 3
                    return (fo == 0, Array(f[(l3 + 8)..<(l3 + 40)]) + Array(f[(p + 4)..<(p + 8)]))
                }
                guard [0, 43, 60].contains(next), f.count >= p + 8 else { return nil }
                next = Int(f[p])
                p += (Int(f[p + 1]) + 1) * 8
            }
        }
        return nil
    }

    /// What tcpdump selects from `file` with `expression`, as a multiset of keys.
    static func tcpdumpSelects(_ file: String, _ expression: String, dir: String) throws -> [Key: Int] {
        let out = dir + "/sel-\(UUID().uuidString.prefix(8)).pcap"
        let (s, _, err) = try Proc.run("/usr/bin/tcpdump", ["-nn", "-r", file, "-w", out, expression], in: dir, label: "tcpdump-sel")
        guard s == 0 else { throw TestFailure("tcpdump \(expression): \(err)") }
        var m: [Key: Int] = [:]
        for f in try readCapture(out) { m[Key(ts: f.timestampNanos, bytes: f.bytes), default: 0] += 1 }
        return m
    }

    /// What a filtered group must receive: each packet of the unfiltered group's output that
    /// tcpdump selects, except that a later fragment goes where its datagram's first went.
    static func expected(unfiltered: [CapturedFrame], tcpdump: [Key: Int]) -> [Key: Int] {
        var firstVerdict: [[UInt8]: Bool] = [:]
        var left = tcpdump
        var verdicts: [Bool] = []
        for f in unfiltered {
            let k = Key(ts: f.timestampNanos, bytes: f.bytes)
            let selected = (left[k] ?? 0) > 0
            if selected { left[k]! -= 1 }
            verdicts.append(selected)
            if let fr = fragment(f.bytes), fr.first { firstVerdict[fr.datagram] = selected }
        }
        var out: [Key: Int] = [:]
        for (i, f) in unfiltered.enumerated() {
            var take = verdicts[i]
            if let d = laterFragment(f.bytes), let v = firstVerdict[d] { take = v }
            if take { out[Key(ts: f.timestampNanos, bytes: f.bytes), default: 0] += 1 }
        }
        return out
    }

    static func keys(_ frames: [CapturedFrame]) -> [Key: Int] {
        var m: [Key: Int] = [:]
        for f in frames { m[Key(ts: f.timestampNanos, bytes: f.bytes), default: 0] += 1 }
        return m
    }

    static let expressions = ["not (tcp port 443)", "tcp port 80 or udp port 53", "icmp or ip6 or vlan"]

    /// One lb run: group a unfiltered, groups b, c, d with the expressions; each filtered
    /// group's rings together must hold what tcpdump selects from a's.
    static func check(trace: String, label: String) throws {
        let scratch = try ScratchDirectory("policy-\(label)")
        var run = LBRun(dir: scratch.path, groups: [("a", 1), ("b", 2), ("c", 1), ("d", 2)])
        let filters = zip(["b", "c", "d"], expressions).flatMap { ["--filter", "\($0.0)=\($0.1)"] }
        try run.startLB(trace, extra: filters)
        try run.startConsumers()
        _ = try run.finish()
        let stats = try LBStats(run.lb!.stdout)
        let a = try run.rings.filter { $0.group == "a" }.flatMap { try readCapture(run.files($0)[0]) }
        for (group, expression) in zip(["b", "c", "d"], expressions) {
            let got = try keys(run.rings.filter { $0.group == group }.flatMap { try readCapture(run.files($0)[0]) })
            let want = expected(unfiltered: a, tcpdump: try tcpdumpSelects(run.files(run.rings[0])[0], expression, dir: scratch.path))
            #expect(got == want, "\(label): group \(group) '\(expression)': lb \(got.values.reduce(0, +)) packets, tcpdump \(want.values.reduce(0, +))")
            // every packet of a is either delivered to the group or counted as filtered
            let filtered = run.rings.filter { $0.group == group }.reduce(0) { $0 + (stats.int($1.name, "filtered_packets") ?? -1) }
            #expect(filtered + got.values.reduce(0, +) == a.count, "\(label): group \(group) counts \(filtered) filtered")
        }
    }

    @Test func filtersSelectWhatTcpdumpSelectsOnTheCorpus() throws {
        let traces = Corpus.traces()
        try #require(traces.count > 40, "the shared corpus is missing")
        for t in traces { try Self.check(trace: t, label: URL(fileURLWithPath: t).deletingPathExtension().lastPathComponent) }
    }

    /// lb gen's mix: TCP, UDP, ICMP, IPv6, VLAN, fragments, VXLAN and GENEVE (filtered after
    /// decapsulation).
    @Test func filtersSelectWhatTcpdumpSelectsOnAGeneratedMix() throws {
        let scratch = try ScratchDirectory("policy-gen")
        let trace = scratch.path + "/mix.pcap"
        let (s, _, err) = try Proc.run(Tool.lb, ["gen", "-w", trace, "--packets", "20000", "--seed", "11"], in: scratch.path, label: "gen")
        try #require(s == 0, "\(err)")
        try Self.check(trace: trace, label: "mix")
    }

    /// Fragments of one UDP datagram to port 53, the first last: tcpdump's 'udp port 53' takes
    /// only the first fragment; the group takes all of them (they follow their flow), and
    /// none of another datagram's.
    @Test func laterFragmentsFollowTheirFirst() throws {
        let scratch = try ScratchDirectory("policy-frag")
        let trace = scratch.path + "/frag.pcap"
        var frames: [(timestampNanos: UInt64, bytes: [UInt8])] = []
        var t: UInt64 = 1_700_000_000_000_000_000
        for (i, port) in [53, 5353].enumerated() {
            let whole = PacketBuilder.build(.ipv4(IPv4Header(src: "10.1.0.1", dst: "10.1.0.2", id: UInt16(100 + i))),
                                            .udp(sport: 3000, dport: UInt16(port)), .filler(3000))
            for f in Fragmenter.ipv4(whole, size: 1000, order: .reversed) {
                t += 1000
                frames.append((t, PacketBuilder.build(.ethernet(), .ip(f))))
            }
        }
        try Data(LBCore.Pcap.file(linkType: 1, nanosecond: false, packets: frames)).write(to: URL(fileURLWithPath: trace))
        var run = LBRun(dir: scratch.path, groups: [("a", 1), ("b", 1)])
        try run.startLB(trace, extra: ["--filter", "b=udp port 53"])
        try run.startConsumers()
        _ = try run.finish()
        let stats = try LBStats(run.lb!.stdout)
        let a = try readCapture(run.files(run.rings[0])[0]), b = try readCapture(run.files(run.rings[1])[0])
        let perDatagram = frames.count / 2
        #expect(a.count == frames.count && b.count == perDatagram)
        #expect(b.allSatisfy { Self.fragment($0.bytes)?.datagram.suffix(3).first == 0 && $0.bytes[19] == 100 }, "only datagram 100's fragments")
        let tcpdump = try Self.tcpdumpSelects(run.files(run.rings[0])[0], "udp port 53", dir: scratch.path)
        #expect(tcpdump.values.reduce(0, +) == 1, "tcpdump takes the first fragment only")
        #expect(stats.int("b:0", "filtered_packets") == perDatagram)
    }

    /// --slice: the first N bytes, the wire length kept (tshark: frame.cap_len, frame.len).
    @Test func slicingKeepsTheFirstBytes() throws {
        let scratch = try ScratchDirectory("policy-slice")
        let trace = scratch.path + "/mix.pcap"
        let (s, _, err) = try Proc.run(Tool.lb, ["gen", "-w", trace, "--packets", "3000", "--seed", "5"], in: scratch.path, label: "gen")
        try #require(s == 0, "\(err)")
        var run = LBRun(dir: scratch.path, groups: [("a", 1), ("s", 2)])
        try run.startLB(trace, extra: ["--slice", "s=96"])
        try run.startConsumers()
        _ = try run.finish()
        let stats = try LBStats(run.lb!.stdout)
        func fields(_ file: String) throws -> [Key: (Int, Int)] {
            let (st, out, e) = try Proc.run("/usr/bin/tshark", ["-r", file, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.cap_len", "-e", "frame.len"],
                                            in: scratch.path, label: "tshark")
            guard st == 0 else { throw TestFailure("tshark: \(e)") }
            let frames = try readCapture(file)
            let lines = out.split(separator: "\n")
            guard lines.count == frames.count else { throw TestFailure("tshark read \(lines.count) of \(frames.count)") }
            var m: [Key: (Int, Int)] = [:]
            for (l, f) in zip(lines, frames) {
                let c = l.split(separator: "\t")
                m[Key(ts: f.timestampNanos, bytes: Array(f.bytes.prefix(96)))] = (Int(c[1])!, Int(c[2])!)
            }
            return m
        }
        let whole = try fields(run.files(run.rings[0])[0])
        var sliced: [Key: (Int, Int)] = [:]
        for r in run.rings.dropFirst() { sliced.merge(try fields(run.files(r)[0])) { a, _ in a } }
        #expect(sliced.count == whole.count)
        var cut = 0
        for (k, w) in whole {
            guard let s = sliced[k] else { Issue.record("a packet is missing from the sliced group"); break }
            #expect(s.0 == min(96, w.0) && s.1 == w.1, "cap_len \(s.0) len \(s.1) for \(w)")
            if w.0 > 96 { cut += 1 }
        }
        let counted = run.rings.dropFirst().reduce(0) { $0 + (stats.int($1.name, "sliced_packets") ?? -1) }
        #expect(cut > 100 && counted == cut)
    }

    /// --tenant-tag vni: the tunnel's id as the delivered frame's outermost 802.1Q tag, VLAN ids
    /// as they are, mapped ids through --tenant-map, others folded and counted; the inner
    /// packet unchanged behind it. --tenant-tag vlan: the outer VLAN.
    @Test func tenantTagsCarryTheTunnelID() throws {
        let scratch = try ScratchDirectory("policy-tenant")
        let trace = scratch.path + "/tenants.pcap"
        var frames: [(timestampNanos: UInt64, bytes: [UInt8])] = []
        var t: UInt64 = 1_700_000_000_000_000_000
        // (outer layers, expected VLAN id with --tenant-map 5000000=77)
        let cases: [([Layer], UInt16?)] = [
            ([.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .udp(sport: 5000, dport: 4789), .vxlan(vni: 100)], 100),
            ([.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .udp(sport: 5000, dport: 4789), .vxlan(vni: 5_000_000)], 77),
            ([.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .udp(sport: 5000, dport: 6081), .geneve(vni: 4094 + 10)], 10),
            ([.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .gre(key: 7)], 7),
            ([.ethernet(), .vlan(id: 300), .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .udp(sport: 5000, dport: 4789), .vxlan(vni: 10)], 10),
            ([.ethernet(), .vlan(id: 300)], nil),
        ]
        for (outer, _) in cases {
            t += 1000
            let inner: [Layer] = outer.count == 2 ? [] : (outer.contains { if case .gre = $0 { return true }; return false } ? [] : [.ethernet(dst: "02:00:00:00:00:0b", src: "02:00:00:00:00:0a")])
            frames.append((t, PacketBuilder.build(outer + inner + [.ipv4(src: "10.0.0.1", dst: "10.0.0.2"), .tcp(sport: 1234, dport: 80), .filler(20)])))
        }
        try Data(LBCore.Pcap.file(linkType: 1, nanosecond: false, packets: frames)).write(to: URL(fileURLWithPath: trace))

        func tshark(_ file: String) throws -> [[String]] {
            let (s, out, e) = try Proc.run("/usr/bin/tshark", ["-r", file, "-T", "fields", "-E", "occurrence=f", "-e", "vlan.id", "-e", "ip.src", "-e", "tcp.dstport", "-e", "frame.len"],
                                           in: scratch.path, label: "tshark")
            guard s == 0 else { throw TestFailure("tshark: \(e)") }
            return out.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        }
        var run = LBRun(dir: scratch.path, groups: [("a", 1)])
        try run.startLB(trace, extra: ["--tenant-tag", "vni", "--tenant-map", "5000000=77"])
        try run.startConsumers()
        _ = try run.finish()
        let stats = try LBStats(run.lb!.stdout)
        let rows = try tshark(run.files(run.rings[0])[0])
        try #require(rows.count == cases.count)
        for (row, c) in zip(rows, cases) {
            #expect(row[0] == (c.1.map(String.init) ?? (row[0].isEmpty ? "" : "300")), "\(row)")
            #expect(row[1] == "10.0.0.1" && row[2] == "80", "\(row)")
        }
        #expect((stats.aggregate["tenant_tagged"] as? NSNumber)?.intValue == 5 && (stats.aggregate["tenant_folded"] as? NSNumber)?.intValue == 1)
        // GENEVE 4104 folds onto 10, which VXLAN's 10 (a VLAN id itself) has too: a collision
        #expect((stats.aggregate["tenant_collisions"] as? NSNumber)?.intValue == 1)

        var byVLAN = LBRun(dir: scratch.path + "/v", groups: [("a", 1)])
        try FileManager.default.createDirectory(atPath: byVLAN.dir, withIntermediateDirectories: true)
        try byVLAN.startLB(trace, extra: ["--tenant-tag", "vlan"])
        try byVLAN.startConsumers()
        _ = try byVLAN.finish()
        let vstats = try LBStats(byVLAN.lb!.stdout)
        let vrows = try tshark(byVLAN.files(byVLAN.rings[0])[0])
        #expect(vrows.map { $0[0] } == ["", "", "", "", "300", "300"], "\(vrows)")
        #expect((vstats.aggregate["tenant_tagged"] as? NSNumber)?.intValue == 1)
    }

    /// Bad policy options stop lb before it starts, naming the option.
    @Test func badPolicyOptionsAreUsageErrors() throws {
        let scratch = try ScratchDirectory("policy-bad")
        for (args, message) in [(["--filter", "x=tcp"], "no group 'x'"),
                                (["--filter", "a=tcp port"], "--filter a=tcp port"),
                                (["--filter", "a=tcp", "--filter", "a=udp"], "one filter per group"),
                                (["--slice", "a=8"], "from 14 to 65535"),
                                (["--tenant-map", "5=6"], "--tenant-map is for --tenant-tag vni"),
                                (["--tenant-tag", "vni", "--tenant-map", "5=4095"], "VLAN from 1 to 4094"),
                                (["--tenant-tag", "mpls"], "--tenant-tag")] {
            let (s, _, err) = try Proc.run(Tool.lb, ["-i", "pcap:/dev/null", "-p", "a:1", "--run-dir", scratch.path + "/run"] + args,
                                           in: scratch.path, label: "bad")
            #expect(s == 64 && err.contains(message), "\(args): \(s) \(err)")
        }
    }
}
