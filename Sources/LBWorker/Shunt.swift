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
