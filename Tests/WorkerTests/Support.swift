import Foundation
import LBCore
import LBGen
// Proc, Scratch, LBStats, Tool and TestFailure: the shared test support
@_exported import LBTestSupport

/// Test traffic: TCP conversations (handshake, two data segments each way, close) whose
/// expected Zeek-style loss figures are known.
enum Traffic {
    static let start: UInt64 = 1_700_000_000_000_000_000

    /// One conversation of 10 packets; with `hole` the client's second data segment is left out
    /// (9 packets), which a worker sees as 1 gap (the server ACKs data it never saw). Every
    /// packet but the first SYN carries an ACK: 9 acks, or 8 with the hole.
    static func conversation(_ i: Int, hole: Bool, vxlan: Bool) -> [[UInt8]] {
        let client = IPv4(10, 1, UInt8(i / 256), UInt8(i % 256)), server: IPv4 = "10.2.0.1"
        let cport = UInt16(40000 + i), sport: UInt16 = 80
        let c = UInt32(1000 + i * 7919), s = UInt32(5000 + i * 104_729)
        let data = [UInt8](repeating: 0x61, count: 100)
        func pkt(_ fromClient: Bool, seq: UInt32, ack: UInt32, flags: TCPFlags, payload: Bool = false) -> [UInt8] {
            var layers: [Layer] = []
            if vxlan {
                layers += [.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .udp(sport: UInt16(50000 + i % 1000), dport: 4789), .vxlan(vni: 77)]
            }
            layers += [.ethernet(),
                       fromClient ? .ipv4(src: client, dst: server) : .ipv4(src: server, dst: client),
                       .tcp(sport: fromClient ? cport : sport, dport: fromClient ? sport : cport, seq: seq, ack: ack, flags: flags)]
            if payload { layers.append(.payload(data)) }
            return PacketBuilder.build(layers)
        }
        var p: [[UInt8]] = [
            pkt(true, seq: c, ack: 0, flags: .syn),
            pkt(false, seq: s, ack: c + 1, flags: [.syn, .ack]),
            pkt(true, seq: c + 1, ack: s + 1, flags: .ack),
            pkt(true, seq: c + 1, ack: s + 1, flags: [.ack, .psh], payload: true),
        ]
        if !hole { p.append(pkt(true, seq: c + 101, ack: s + 1, flags: [.ack, .psh], payload: true)) }
        p += [
            pkt(false, seq: s + 1, ack: c + 201, flags: .ack),
            pkt(false, seq: s + 1, ack: c + 201, flags: [.ack, .psh], payload: true),
            pkt(true, seq: c + 201, ack: s + 101, flags: [.fin, .ack]),
            pkt(false, seq: s + 101, ack: c + 202, flags: [.fin, .ack]),
            pkt(true, seq: c + 202, ack: s + 102, flags: .ack),
        ]
        return p
    }

    /// `flows` conversations, interleaved; flows with i % 3 == 0 come inside VXLAN, flows with
    /// i % 4 == 1 have a hole. Returns the packets with their expected gap and ack totals.
    static func conversations(_ flows: Int) -> (packets: [[UInt8]], gaps: Int, acks: Int) {
        var all: [[[UInt8]]] = []
        var gaps = 0, acks = 0
        for i in 0..<flows {
            let hole = i % 4 == 1
            all.append(conversation(i, hole: hole, vxlan: i % 3 == 0))
            gaps += hole ? 1 : 0
            acks += hole ? 8 : 9
        }
        var out: [[UInt8]] = []
        for k in 0..<10 { for f in all where k < f.count { out.append(f[k]) } }
        return (out, gaps, acks)
    }

    /// Writes a classic pcap of `packets`, one millisecond apart.
    static func write(_ packets: [[UInt8]], to path: String) throws {
        let file = Pcap.file(linkType: 1, nanosecond: true,
                             packets: packets.enumerated().map { (start + UInt64($0.offset) * 1_000_000, $0.element) })
        guard FileManager.default.createFile(atPath: path, contents: Data(file)) else { throw TestFailure("cannot write \(path)") }
    }

    /// A bulk TCP connection (SYN, SYN-ACK, ACK, `dataPackets` segments of 1000 bytes, 3 of 4
    /// from the client, FIN, FIN, RST) with a small UDP flow beside it every 50 segments.
    static func bulk(to path: String, dataPackets: Int) throws {
        let client: IPv4 = "10.0.0.1", server: IPv4 = "10.9.9.9"
        var packets: [[UInt8]] = []
        func seg(_ fromClient: Bool, _ flags: TCPFlags, size: Int = 1000) -> [UInt8] {
            var l: [Layer] = [.ethernet(), .ipv4(src: fromClient ? client : server, dst: fromClient ? server : client),
                              .tcp(sport: fromClient ? 40000 : 443, dport: fromClient ? 443 : 40000, flags: flags)]
            if size > 0 { l.append(.filler(size)) }
            return PacketBuilder.build(l)
        }
        packets += [seg(true, .syn, size: 0), seg(false, [.syn, .ack], size: 0), seg(true, .ack, size: 0)]
        for i in 0..<dataPackets {
            packets.append(seg(i % 4 != 3, [.psh, .ack]))
            if i % 50 == 0 { packets.append(PacketBuilder.build(.ethernet(), .ipv4(src: "10.0.0.2", dst: "10.0.0.53"), .udp(sport: 3333, dport: 53), .filler(40))) }
        }
        packets += [seg(true, [.fin, .ack], size: 0), seg(false, [.fin, .ack], size: 0), seg(true, .rst, size: 0)]
        try write(packets, to: path)
    }
}
