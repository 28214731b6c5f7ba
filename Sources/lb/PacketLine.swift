import CLBRing
import Glibc
import LBCore
import LBFlow

/// One tcpdump-like line for `lb tap`: time, addresses, ports, protocol, TCP flags, length.
///
/// Nothing is parsed here: LBCore's decoder walks the link layer (VLAN tags, MPLS, PPPoE,
/// LLC/SNAP) to the IP header, as lb itself does, and LBFlow's packet parser reads the IP
/// packet (addresses, ports, TCP flags, ICMP type). The decoder removes no tunnel (no tunnel
/// ports, depth 0), so a tunnelled packet shows its outer header, as tcpdump shows it.
struct PacketLine {
    let decoder: Decoder = {
        var c = DecodeConfig(tunnelPorts: [], maxDepth: 0, keepEncapsulation: true)
        c.teredoAnyPort = false
        return Decoder(c)
    }()
    var decoded = Decoded()
    var packet = FlowPacket()

    mutating func render(_ d: lb_desc, _ b: UnsafeRawBufferPointer) -> String {
        let t = d.ts_ns
        var tm = tm()
        var tt = time_t(t / 1_000_000_000)
        gmtime_r(&tt, &tm)
        let usec = Int(t % 1_000_000_000 / 1000)
        let time = "\(Self.pad(Int(tm.tm_hour), 2)):\(Self.pad(Int(tm.tm_min), 2)):\(Self.pad(Int(tm.tm_sec), 2)).\(Self.pad(usec, 6))"
        return time + " " + describe(b, wire: Int(d.wirelen), ts: t)
    }

    mutating func describe(_ b: UnsafeRawBufferPointer, wire: Int, ts: UInt64 = 0) -> String {
        withUnsafeMutablePointer(to: &decoded) { decoder.decode(b, link: .ethernet, into: $0) }
        let d = decoded
        let vlan = d.hasVLAN ? "vlan \(d.vlan), " : ""
        guard d.l3 >= 0 else {
            if d.error == .truncatedLink && d.key.kind == .none { return "truncated frame, length \(wire)" }
            // the decoder keys Ethernet/IPv4 ARP on its two protocol addresses
            if d.nonIP && d.key.kind == .addresses { return vlan + "ARP, length \(wire)" }
            let type = Self.etherType(b)
            if type == 0x0806 { return vlan + "ARP, length \(wire)" }
            return vlan + "ethertype 0x\(String(type, radix: 16)), length \(wire)"
        }
        let problem = PacketParser.parse(b, l3: d.l3, wireLength: wire, ts: ts, ignoreChecksums: true, into: &packet)
        let p = packet
        let family = b[d.l3] >> 4 == 6 ? "IP6" : "IP"
        switch problem {
        case .none, .truncatedTransport, .otherProtocol, .fragment, .badTCPHeader:
            break
        case .notIP, .truncatedIP, .badIPHeader, .badIPChecksum:
            // addresses as far as the decoder read them
            let (src, dst) = (Self.address(d.key.srcHi, d.key.srcLo), Self.address(d.key.dstHi, d.key.dstLo))
            return "\(vlan)\(family) \(src) > \(dst): proto \(d.key.proto) (bad or truncated IP header), length \(wire)"
        }
        let src = Self.address(p.src.hi, p.src.lo), dst = Self.address(p.dst.hi, p.dst.lo)
        let head = "\(vlan)\(family) \(src)"
        if problem == .fragment {
            // the first fragment holds the ports (the decoder reads them), the others do not;
            // like tcpdump, an IPv6 fragment names them after the addresses
            let name = Self.transportName(p.proto)
            if p.fragOffset == 0, d.key.kind == .ports, let name {
                if p.isV6 { return "\(head) > \(dst): \(name) \(d.key.sport) > \(d.key.dport) (fragment), length \(wire)" }
                return "\(head).\(d.key.sport) > \(dst).\(d.key.dport): \(name) (fragment), length \(wire)"
            }
            return "\(head) > \(dst): proto \(p.proto) (fragment), length \(wire)"
        }
        switch p.proto {
        case 6 where problem == .none:
            return "\(head).\(p.sport) > \(dst).\(p.dport): tcp Flags [\(Self.flags(p.flags))], length \(wire)"
        case 17 where problem == .none:
            return "\(head).\(p.sport) > \(dst).\(p.dport): udp, length \(wire)"
        case 1 where problem == .none, 58 where problem == .none:
            return "\(head) > \(dst): \(p.proto == 1 ? "icmp" : "icmp6") type \(p.icmpType) code \(p.icmpCode), length \(wire)"
        case 132 where p.l4Captured >= 4:
            // SCTP: its ports are in its header (lb hashes SCTP on the addresses only)
            let at = p.l4Offset
            let sport = Int(b[at]) << 8 | Int(b[at + 1]), dport = Int(b[at + 2]) << 8 | Int(b[at + 3])
            return "\(head).\(sport) > \(dst).\(dport): sctp, length \(wire)"
        case 6, 17, 132:
            // a transport header cut short: the ports, if the decoder could read them
            guard d.key.kind == .ports else { return "\(head) > \(dst): proto \(p.proto), length \(wire)" }
            let name = Self.transportName(p.proto)!
            let cut = p.proto == 132 ? "" : " (truncated)"
            return "\(head).\(d.key.sport) > \(dst).\(d.key.dport): \(name)\(cut), length \(wire)"
        default:
            return "\(head) > \(dst): proto \(p.proto), length \(wire)"
        }
    }

    static func transportName(_ proto: UInt8) -> String? {
        switch proto {
        case 6: "tcp"
        case 17: "udp"
        case 132: "sctp"
        default: nil
        }
    }

    /// tcpdump's letters, in tcpdump's order.
    static func flags(_ f: UInt8) -> String {
        var s = ""
        if f & TCPFlag.syn != 0 { s += "S" }
        if f & TCPFlag.fin != 0 { s += "F" }
        if f & TCPFlag.rst != 0 { s += "R" }
        if f & TCPFlag.psh != 0 { s += "P" }
        if f & TCPFlag.ack != 0 { s += "." }
        if f & TCPFlag.urg != 0 { s += "U" }
        return s.isEmpty ? "none" : s
    }

    /// The EtherType a non-IP frame carries, past its VLAN tags (the line names it).
    static func etherType(_ b: UnsafeRawBufferPointer) -> Int {
        guard b.count >= 14 else { return 0 }
        var off = 12
        var type = Int(b[off]) << 8 | Int(b[off + 1])
        while type == 0x8100 || type == 0x88A8 || type == 0x9100, b.count >= off + 8 {
            off += 4
            type = Int(b[off]) << 8 | Int(b[off + 1])
        }
        return type
    }

    /// An address of a flow key or a parsed packet (IPv4 stored IPv4-mapped), as inet_ntop
    /// writes it.
    static func address(_ hi: UInt64, _ lo: UInt64) -> String {
        if hi == 0 && lo >> 32 == 0xFFFF {
            return [24, 16, 8, 0].map { String(lo >> UInt64($0) & 0xFF) }.joined(separator: ".")
        }
        var a = in6_addr()
        withUnsafeMutableBytes(of: &a) {
            $0.storeBytes(of: hi.bigEndian, toByteOffset: 0, as: UInt64.self)
            $0.storeBytes(of: lo.bigEndian, toByteOffset: 8, as: UInt64.self)
        }
        var buf = [UInt8](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        buf.withUnsafeMutableBufferPointer { out in
            out.withMemoryRebound(to: CChar.self) { _ = inet_ntop(AF_INET6, &a, $0.baseAddress, socklen_t($0.count)) }
        }
        return String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self)
    }

    static func pad(_ v: Int, _ n: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, n - s.count)) + s
    }
}
