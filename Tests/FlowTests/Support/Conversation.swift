import LBFlow
import LBGen

/// Builds the frames of TCP/UDP/ICMP exchanges between a client and a server, tracking
/// sequence numbers, for the state-machine tests and the capture-loss trace.
struct Conversation {
    var client: IPv4
    var server: IPv4
    var cport: UInt16
    var sport: UInt16
    var cseq: UInt32 = 1000
    var sseq: UInt32 = 5000
    var ts: UInt64
    var frames: [(timestampNanos: UInt64, bytes: [UInt8])] = []
    /// every frame is kept here too, with a label, so a test can drop some
    var labels: [String] = []
    /// layers before the inner IP header (default: Ethernet); a tunnel's outer headers end with
    /// the inner link layer, e.g. [.ethernet(), .ipv4(...), .udp(...), .geneve(...), .ethernet()]
    var outer: [Layer] = [.ethernet()]
    /// TCP options of SYN and SYN-ACK (e.g. window scale)
    var synOptions: [UInt8] = []

    init(client: IPv4 = "10.0.0.1", server: IPv4 = "10.0.0.2", cport: UInt16 = 40000, sport: UInt16 = 8080,
         ts: UInt64 = 1_700_000_000_000_000_000) {
        self.client = client; self.server = server; self.cport = cport; self.sport = sport; self.ts = ts
    }

    mutating func add(_ label: String, _ bytes: [UInt8], gapMicros: UInt64 = 1000) {
        ts &+= gapMicros * 1000
        frames.append((ts, bytes))
        labels.append(label)
    }

    func tcpFrame(fromClient: Bool, flags: TCPFlags, seq: UInt32, ack: UInt32, payload: Int, window: UInt16 = 65535) -> [UInt8] {
        let (s, d, sp, dp) = fromClient ? (client, server, cport, sport) : (server, client, sport, cport)
        let options = flags.contains(.syn) ? synOptions : []
        var layers: [Layer] = outer + [.ipv4(src: s, dst: d),
                                       .tcp(sport: sp, dport: dp, seq: seq, ack: ack, flags: flags, window: window, options: options)]
        if payload > 0 { layers.append(.filler(payload)) }
        return PacketBuilder.build(layers)
    }

    mutating func syn() { add("S", tcpFrame(fromClient: true, flags: .syn, seq: cseq, ack: 0, payload: 0)); cseq &+= 1 }
    mutating func synAck() { add("h", tcpFrame(fromClient: false, flags: [.syn, .ack], seq: sseq, ack: cseq, payload: 0)); sseq &+= 1 }
    mutating func ackFromClient() { add("A", tcpFrame(fromClient: true, flags: .ack, seq: cseq, ack: sseq, payload: 0)) }
    mutating func ackFromServer() { add("a", tcpFrame(fromClient: false, flags: .ack, seq: sseq, ack: cseq, payload: 0)) }
    mutating func dataFromClient(_ n: Int) { add("D", tcpFrame(fromClient: true, flags: [.ack, .psh], seq: cseq, ack: sseq, payload: n)); cseq &+= UInt32(n) }
    mutating func dataFromServer(_ n: Int) { add("d", tcpFrame(fromClient: false, flags: [.ack, .psh], seq: sseq, ack: cseq, payload: n)); sseq &+= UInt32(n) }
    mutating func finFromClient() { add("F", tcpFrame(fromClient: true, flags: [.fin, .ack], seq: cseq, ack: sseq, payload: 0)); cseq &+= 1 }
    mutating func finFromServer() { add("f", tcpFrame(fromClient: false, flags: [.fin, .ack], seq: sseq, ack: cseq, payload: 0)); sseq &+= 1 }
    mutating func rstFromServer() { add("r", tcpFrame(fromClient: false, flags: [.rst, .ack], seq: sseq, ack: cseq, payload: 0)) }

    mutating func handshake() { syn(); synAck(); ackFromClient() }
    mutating func close() { finFromClient(); ackFromServer(); finFromServer(); ackFromClient() }

    mutating func udp(fromClient: Bool, payload: Int) {
        let (s, d, sp, dp) = fromClient ? (client, server, cport, sport) : (server, client, sport, cport)
        // on DNS's port the payload is a well-formed DNS header (Zeek's DNS analyzer reads it)
        let dns = (sp == 53 || dp == 53) && payload >= 12
        let body: Layer = dns ? .payload([0x12, 0x34, fromClient ? 0x01 : 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]
                                         + Array(repeating: 0x61, count: payload - 12)) : .filler(payload)
        add("u", PacketBuilder.build(.ethernet(), .ipv4(src: s, dst: d), .udp(sport: sp, dport: dp), body))
    }

    mutating func ping(reply: Bool, payload: Int = 56) {
        let (s, d) = reply ? (server, client) : (client, server)
        add("i", PacketBuilder.build(.ethernet(), .ipv4(src: s, dst: d), .icmpEcho(id: 7, seq: 1, reply: reply), .filler(payload)))
    }
}

/// Runs frames through a connection table and returns its conn.log records.
func track(_ frames: [(timestampNanos: UInt64, bytes: [UInt8])], config: FlowConfig = FlowConfig()) -> (records: [ConnRecord], table: ConnTable) {
    var table = ConnTable(config: config, seed: 1)
    for f in frames {
        f.bytes.withUnsafeBytes { b in
            table.process(b, l3: 14, wireLength: b.count, ts: f.timestampNanos)
        }
    }
    table.flushAll()
    return (table.finished, table)
}
