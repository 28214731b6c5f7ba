import Foundation

/// Reads the packets of a pcap with tshark (an oracle independent of lb's decoder) and names
/// the flow of each: the canonical 5-tuple of its first IP header (endpoints sorted, ports for
/// TCP/UDP/SCTP), the quoted packet's flow for ICMP errors, the datagram for fragments, the
/// ARP address pair, or the MAC pair for other frames.
struct PacketFlows {
    /// flow of each packet (fragments resolved later, see `resolve`)
    var flows: [String] = []
    /// the first IP header's flow of each packet, without the ICMP-error rule (what a worker
    /// sees as the packet's own connection)
    var outermost: Set<String> = []
    /// fragments whose flow is their first fragment's: datagram key -> flow (from first fragments)
    var firstFragments: [String: String] = [:]
    /// indices in `flows` of non-first fragments, with their datagram key
    var laterFragments: [(Int, String)] = []

    static let fields = [
        "frame.protocols", "eth.src", "eth.dst", "arp.src.proto_ipv4", "arp.dst.proto_ipv4",
        "ip.src", "ip.dst", "ip.proto", "ip.id", "ip.flags.mf", "ip.frag_offset",
        "ipv6.src", "ipv6.dst", "ipv6.nxt", "ipv6.fraghdr.ident", "ipv6.fraghdr.offset", "ipv6.fraghdr.more", "ipv6.fraghdr.nxt",
        "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport",
        "icmp.type", "icmpv6.type",
    ]

    static func read(_ file: String, in dir: String, label: String) throws -> PacketFlows {
        var args = ["-n", "-r", file, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
                    "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"]
        for f in fields { args += ["-e", f] }
        let (status, out) = try Tool.run("/usr/bin/tshark", args, in: dir, label: label)
        guard status == 0 else { throw TestFailure("tshark failed on \(file)") }
        var result = PacketFlows()
        for line in out.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            let cols = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            result.add(Row(cols))
        }
        return result
    }

    struct Row {
        let values: [String: [String]]
        let chain: [String]
        init(_ cols: [String]) {
            var v: [String: [String]] = [:]
            for (i, f) in PacketFlows.fields.enumerated() where i < cols.count {
                v[f] = cols[i].isEmpty ? [] : cols[i].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            }
            values = v
            chain = (v["frame.protocols"]?.first ?? "").split(separator: ":").map(String.init)
        }
        /// The `n`-th value of a field, or "".
        func get(_ f: String, _ n: Int) -> String {
            guard let a = values[f], n < a.count else { return "" }
            return a[n]
        }
        /// How many layers named `name` come before chain position `i` (the occurrence index of
        /// that layer's fields).
        func occurrence(_ name: String, before i: Int) -> Int { chain[..<i].filter { $0 == name }.count }
    }

    mutating func add(_ r: Row) {
        let index = flows.count
        guard let ipAt = r.chain.firstIndex(where: { $0 == "ip" || $0 == "ipv6" }) else {
            if r.chain.contains("arp") {
                flows.append(Self.canonical("arp", [r.get("arp.src.proto_ipv4", 0), r.get("arp.dst.proto_ipv4", 0)]))
            } else {
                flows.append(Self.canonical("l2", [r.get("eth.src", 0), r.get("eth.dst", 0)]))
            }
            return
        }
        let own = flow(r, ipAt: ipAt)
        outermost.insert(own.flow)
        var chosen = own
        // ICMP errors belong to the flow they quote.
        if let l4 = own.l4At, l4 < r.chain.count {
            let isICMP = r.chain[l4] == "icmp", isICMP6 = r.chain[l4] == "icmpv6"
            let type = Int(isICMP ? r.get("icmp.type", r.occurrence("icmp", before: l4))
                                  : r.get("icmpv6.type", r.occurrence("icmpv6", before: l4))) ?? -1
            let error = (isICMP && [3, 4, 5, 11, 12].contains(type)) || (isICMP6 && (1...4).contains(type))
            if error, let quoted = r.chain[(l4 + 1)...].firstIndex(where: { $0 == "ip" || $0 == "ipv6" }) {
                chosen = flow(r, ipAt: quoted)
            }
        }
        flows.append(chosen.flow)
        if let datagram = chosen.datagram {
            if chosen.firstFragment { firstFragments[datagram] = chosen.flow } else { laterFragments.append((index, datagram)) }
        }
    }

    /// The flow of the IP header at chain position `ipAt`.
    func flow(_ r: Row, ipAt: Int) -> (flow: String, l4At: Int?, datagram: String?, firstFragment: Bool) {
        let v6 = r.chain[ipAt] == "ipv6"
        let n = r.occurrence(r.chain[ipAt], before: ipAt)
        let src = Self.address(r.get(v6 ? "ipv6.src" : "ip.src", n))
        let dst = Self.address(r.get(v6 ? "ipv6.dst" : "ip.dst", n))
        var l4At = ipAt + 1
        while l4At < r.chain.count && r.chain[l4At].hasPrefix("ipv6.") { l4At += 1 }
        // Fragment?
        var datagram: String? = nil
        var first = false
        var proto: String
        if v6 {
            let fragHeaders = r.chain[..<ipAt].filter { $0 == "ipv6.fraghdr" }.count
            let offset = r.get("ipv6.fraghdr.offset", fragHeaders)
            let ident = r.get("ipv6.fraghdr.ident", fragHeaders)
            proto = r.get("ipv6.fraghdr.nxt", fragHeaders)
            if r.chain[ipAt...].prefix(while: { $0 != "tcp" && $0 != "udp" }).contains("ipv6.fraghdr"), !ident.isEmpty {
                datagram = "6|\(src)|\(dst)|\(ident)"
                first = (Int(offset) ?? 0) == 0
            } else {
                proto = Self.protoNumber(l4At < r.chain.count ? r.chain[l4At] : "") ?? r.get("ipv6.nxt", n)
            }
        } else {
            proto = r.get("ip.proto", n)
            let offset = Int(r.get("ip.frag_offset", n)) ?? 0
            let more = r.get("ip.flags.mf", n)
            if offset != 0 || more == "1" || more == "True" {
                datagram = "4|\(src)|\(dst)|\(r.get("ip.id", n))|\(proto)"
                first = offset == 0
            }
        }
        let l4 = l4At < r.chain.count ? r.chain[l4At] : ""
        if datagram != nil && !first {
            return (Self.canonical(proto, [src, dst]), nil, datagram, false)
        }
        if ["tcp", "udp", "sctp"].contains(l4) {
            let k = r.occurrence(l4, before: l4At)
            let sp = r.get("\(l4).srcport", k), dp = r.get("\(l4).dstport", k)
            if !sp.isEmpty && !dp.isEmpty {
                return (Self.canonical(proto, ["\(src) \(sp)", "\(dst) \(dp)"]), l4At, datagram, first)
            }
        }
        return (Self.canonical(proto, [src, dst]), l4At, datagram, first)
    }

    /// Resolves non-first fragments to the flow of their first fragment, found in `groupFirsts`
    /// (all files of the group); a datagram whose first fragment is nowhere is its own flow.
    mutating func resolve(_ groupFirsts: [String: String]) {
        for (i, datagram) in laterFragments {
            flows[i] = groupFirsts[datagram] ?? "datagram|" + datagram
        }
    }

    static func canonical(_ proto: String, _ endpoints: [String]) -> String {
        proto + "|" + endpoints.sorted().joined(separator: "|")
    }

    static func protoNumber(_ layer: String) -> String? {
        ["tcp": "6", "udp": "17", "sctp": "132", "icmp": "1", "icmpv6": "58", "gre": "47", "ip": "4", "ipv6": "41"][layer]
    }

    /// One spelling per address (tshark and Zeek may compress IPv6 differently).
    static func address(_ s: String) -> String {
        var a6 = in6_addr()
        if s.contains(":"), inet_pton(AF_INET6, s, &a6) == 1 {
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            inet_ntop(AF_INET6, &a6, &buf, socklen_t(buf.count))
            return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return s
    }
}

/// The connections of a Zeek conn.log (TSV with a #fields header).
struct ConnLog {
    struct Conn { let orig: String; let origPort: String; let resp: String; let respPort: String; let proto: String; let tunnelParents: String }
    var conns: [Conn] = []
    var hasIDs = false

    init(path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var fields: [String] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("#fields") {
                fields = line.split(separator: "\t").dropFirst().map(String.init)
                continue
            }
            if line.hasPrefix("#") || fields.isEmpty { continue }
            let v = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            func f(_ name: String) -> String? { fields.firstIndex(of: name).flatMap { $0 < v.count ? v[$0] : nil } }
            guard let o = f("id.orig_h"), let r = f("id.resp_h"), let proto = f("proto") else { continue }
            hasIDs = true
            conns.append(Conn(orig: PacketFlows.address(o), origPort: f("id.orig_p") ?? "", resp: PacketFlows.address(r),
                              respPort: f("id.resp_p") ?? "", proto: proto, tunnelParents: f("tunnel_parents") ?? "-"))
        }
    }

    /// The flow name PacketFlows gives this connection.
    static func flow(_ c: Conn) -> String {
        let v6 = c.orig.contains(":")
        switch c.proto {
        case "tcp": return PacketFlows.canonical("6", ["\(c.orig) \(c.origPort)", "\(c.resp) \(c.respPort)"])
        case "udp": return PacketFlows.canonical("17", ["\(c.orig) \(c.origPort)", "\(c.resp) \(c.respPort)"])
        case "icmp": return PacketFlows.canonical(v6 ? "58" : "1", [c.orig, c.resp])
        default: return PacketFlows.canonical("?", [c.orig, c.resp])
        }
    }
}
