import CLBRing
import LBRing
import LBSys

// Shunting from a worker (docs/shunting.md): the worker asks lb to stop sending a flow to its
// group — the flow of a packet it just read, or one it names. Each request is one exchange
// on the group's control socket; a worker asks once per flow, so the cost does not matter.

/// A worker's shunt request.
public struct ShuntAsk: Sendable {
    /// only the packet's own direction (from its source to its destination)
    public var oneWay = false
    /// end after this many seconds without a shunted packet / this long after it was added (0: never)
    public var idleSeconds: Double = 0
    public var hardSeconds: Double = 0
    public init(oneWay: Bool = false, idleSeconds: Double = 0, hardSeconds: Double = 0) {
        self.oneWay = oneWay; self.idleSeconds = idleSeconds; self.hardSeconds = hardSeconds
    }

    var fields: String { "dir=\(oneWay ? "forward" : "both") idle=\(idleSeconds) hard=\(hardSeconds)" }
}

extension RingConsumer {
    /// Stops the flow of `frame` (a packet as read from this ring: `bytes`, with its
    /// descriptor's `vni` and, when tagged, `vlan`) for this ring's group. Returns lb's answer
    /// ("added" or "updated"); throws lb's refusal (table full, malformed, ...).
    public func shunt(frame: UnsafeRawBufferPointer, vni: UInt32, vlan: UInt16?, _ ask: ShuntAsk) throws(AttachError) -> String {
        let n = min(frame.count, 256)
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2 * n)
        for i in 0..<n {
            bytes.append(digits[Int(frame[i] >> 4)])
            bytes.append(digits[Int(frame[i] & 15)])
        }
        let hex = String(decoding: bytes, as: UTF8.self)
        var line = "add frame=\(hex) \(ask.fields) vni=\(vni & 0xFF_FFFF)"
        if let vlan { line += " vlan=\(vlan & 0xFFF)" }
        return try shuntRequest(line).first ?? ""
    }

    /// Stops a flow named by text (`proto=tcp src=10.0.0.1 sport=40000 dst=10.9.9.9 dport=443`).
    public func shunt(flow: String, _ ask: ShuntAsk) throws(AttachError) -> String {
        try shuntRequest("add \(flow) \(ask.fields)").first ?? ""
    }

    /// Ends the shunt of a flow named by text; returns its final counts (one JSON object).
    public func unshunt(flow: String) throws(AttachError) -> String {
        let answer = try shuntRequest("del \(flow)")
        return answer.dropFirst().first ?? ""
    }

    /// One request on the group's socket: lb's reply message, then its lines.
    public func shuntRequest(_ line: String) throws(AttachError) -> [String] {
        try StatsClient.shunt(runDir: runDir, group: name.group, line: line).lines
    }
}

/// A shunt's end report (an LB_F_SHUNT_END record, struct lb_shunt_end): what one of lb's
/// data-path threads stopped of a flow; several threads each send their own (add them up).
public struct ShuntEnd: Sendable, Equatable {
    public var aHi: UInt64, aLo: UInt64, bHi: UInt64, bLo: UInt64
    public var aPort: UInt16, bPort: UInt16
    public var proto: UInt8
    /// 1 idle timeout, 2 hard timeout, 3 removed, 4 end of input
    public var reason: UInt8
    /// packets and IP bytes stopped from a to b and from b to a (a is the lower endpoint)
    public var packetsAB: UInt64, ipBytesAB: UInt64, packetsBA: UInt64, ipBytesBA: UInt64
    public var addedNanos: UInt64, lastNanos: UInt64

    /// The report in a record whose descriptor has LB_F_SHUNT_END; nil for anything else.
    public init?(flags: UInt32, bytes: UnsafeRawBufferPointer) {
        guard flags & LB_F_SHUNT_END != 0, bytes.count >= MemoryLayout<lb_shunt_end>.size else { return nil }
        var r = lb_shunt_end()
        withUnsafeMutableBytes(of: &r) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[..<$0.count])) }
        func words(_ t: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)) -> (UInt64, UInt64) {
            withUnsafeBytes(of: t) { b in
                var hi: UInt64 = 0, lo: UInt64 = 0
                for i in 0..<8 { hi = hi << 8 | UInt64(b[i]); lo = lo << 8 | UInt64(b[8 + i]) }
                return (hi, lo)
            }
        }
        (aHi, aLo) = words(r.a)
        (bHi, bLo) = words(r.b)
        aPort = r.a_port; bPort = r.b_port; proto = r.proto; reason = r.reason
        packetsAB = r.packets_ab; ipBytesAB = r.ip_bytes_ab; packetsBA = r.packets_ba; ipBytesBA = r.ip_bytes_ba
        addedNanos = r.added_ns; lastNanos = r.last_ns
    }
}
