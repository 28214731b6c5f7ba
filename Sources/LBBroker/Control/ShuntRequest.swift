import LBCore
import LBSys

/// A shunt request as text: the line `lb shunt` sends on the control socket (and that
/// docs/shunting.md documents for other clients):
///
///     add proto=tcp src=10.0.0.1 sport=40000 dst=10.9.9.9 dport=443 [dir=both|forward]
///         [idle=SECONDS] [hard=SECONDS] [vlan=ID] [vni=VNI]
///     del proto=tcp src=... sport=... dst=... dport=... [vlan=ID] [vni=VNI]
///     list
///
/// `dir=forward` stops only packets from src to dst (as Zeek's `shunt_flow` and dumbno do);
/// the default stops both directions. `vlan`/`vni` matter only when lb hashes on them
/// (`--hash-vlan`, `--hash-vni`): an entry is keyed as the hash sees the flow.
public struct ShuntRequest: Equatable, Sendable {
    public enum Op: String, Sendable { case add, del, list }
    public var op: Op
    public var src = ShuntTable.Endpoint(hi: 0, lo: 0, port: 0)
    public var dst = ShuntTable.Endpoint(hi: 0, lo: 0, port: 0)
    public var proto: UInt8 = 0
    public var forwardOnly = false
    public var idleSeconds: Double = 0
    public var hardSeconds: Double = 0
    public var vlan: UInt16? = nil
    public var vni: UInt32? = nil
    /// `frame=HEX`: the first bytes of a packet as a worker got it from its ring; its flow is
    /// the one to shunt (instead of src, dst, proto and ports)
    public var frame: [UInt8]? = nil
    /// the most bytes of a frame a request carries
    public static let maxFrame = 256

    public init(op: Op) { self.op = op }

    public static let protocols: [String: UInt8] = ["icmp": 1, "tcp": 6, "udp": 17, "icmp6": 58, "sctp": 132]

    /// Parses one request line; throws a message that names what is wrong.
    public static func parse(_ line: String) throws(BrokerError) -> ShuntRequest {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).map(String.init)
        guard let first = words.first, let op = Op(rawValue: first) else {
            throw BrokerError("a shunt request starts with add, del or list")
        }
        var r = ShuntRequest(op: op)
        if op == .list {
            guard words.count == 1 else { throw BrokerError("list takes no arguments") }
            return r
        }
        var seen: Set<String> = []
        for w in words.dropFirst() {
            guard let eq = w.firstIndex(of: "="), eq != w.startIndex else { throw BrokerError("'\(w)': expected NAME=VALUE") }
            let name = String(w[..<eq]), value = String(w[w.index(after: eq)...])
            guard seen.insert(name).inserted else { throw BrokerError("\(name) given twice") }
            switch name {
            case "src", "dst":
                guard let a = Sys.parseAddress(value) else { throw BrokerError("\(name)=\(value): not an IPv4 or IPv6 address") }
                if name == "src" { r.src.hi = a.hi; r.src.lo = a.lo } else { r.dst.hi = a.hi; r.dst.lo = a.lo }
            case "sport", "dport":
                guard let p = UInt16(value) else { throw BrokerError("\(name)=\(value): a port is 0 to 65535") }
                if name == "sport" { r.src.port = p } else { r.dst.port = p }
            case "proto":
                guard let p = protocols[value.lowercased()] ?? UInt8(value) else {
                    throw BrokerError("proto=\(value): tcp, udp, icmp, icmp6, sctp or a number 0 to 255")
                }
                r.proto = p
            case "dir":
                switch value {
                case "both": r.forwardOnly = false
                case "forward": r.forwardOnly = true
                default: throw BrokerError("dir=\(value): both or forward (from src to dst only)")
                }
            case "idle", "hard":
                guard let s = Double(value), s >= 0, s <= 1e9 else { throw BrokerError("\(name)=\(value): seconds, 0 for none") }
                if name == "idle" { r.idleSeconds = s } else { r.hardSeconds = s }
            case "vlan":
                guard let v = UInt16(value), v < 4096 else { throw BrokerError("vlan=\(value): 0 to 4095") }
                r.vlan = v
            case "vni":
                guard let v = UInt32(value), v < 1 << 24 else { throw BrokerError("vni=\(value): 0 to 16777215") }
                r.vni = v
            case "frame":
                guard let bytes = hex(value), bytes.count >= 14, bytes.count <= maxFrame else {
                    throw BrokerError("frame=: 14 to \(maxFrame) bytes of a packet in hexadecimal")
                }
                r.frame = bytes
            default:
                throw BrokerError("unknown field '\(name)' (src, dst, sport, dport, proto, dir, idle, hard, vlan, vni)")
            }
        }
        if seen.contains("frame") {
            for f in ["src", "dst", "proto", "sport", "dport"] where seen.contains(f) {
                throw BrokerError("\(f)= and frame= cannot be combined (the frame names the flow)")
            }
        } else {
            for needed in ["src", "dst", "proto"] where !seen.contains(needed) { throw BrokerError("\(needed)= is missing") }
        }
        if op == .del && (seen.contains("idle") || seen.contains("hard") || seen.contains("dir")) {
            throw BrokerError("del names a flow only (dir, idle and hard are for add)")
        }
        return r
    }

    static func hex(_ s: String) -> [UInt8]? {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var i = 0
        while i < u.count {
            guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }

    /// The flow of `frame` as lb's decoder reads it, or nil when it has no IP flow.
    public func frameKey(_ decoder: Decoder) -> FlowKey? {
        guard let frame else { return nil }
        let d = frame.withUnsafeBytes { decoder.decode($0, link: .ethernet) }
        guard d.key.kind == .ports || d.key.kind == .addresses, !d.nonIP else { return nil }
        return d.key
    }

    /// The table rule, keyed as lb's hash sees the flow.
    public func rule(hashVNI: Bool, hashVLAN: Bool, frameKey: FlowKey? = nil) -> ShuntTable.Rule {
        var extra: UInt32 = 0
        if hashVNI { extra = vni ?? 0 }
        if hashVLAN, let v = vlan { extra = extra &* 0x9E37_79B1 &+ UInt32(v) &+ 1 }
        if let k = frameKey {
            return ShuntTable.Rule(key: k, extra: extra, directions: forwardOnly ? .forward : .both,
                                   idleNanos: UInt64(idleSeconds * 1e9), hardNanos: UInt64(hardSeconds * 1e9))
        }
        // only TCP and UDP flows are hashed with their ports (ICMP on its types, the rest on the
        // addresses): other protocols' ports are not part of the flow
        var src = src, dst = dst
        if proto != 6 && proto != 17 { src.port = 0; dst.port = 0 }
        return ShuntTable.Rule(src: src, dst: dst, proto: proto, extra: extra, directions: forwardOnly ? .forward : .both,
                               idleNanos: UInt64(idleSeconds * 1e9), hardNanos: UInt64(hardSeconds * 1e9))
    }

    /// The line that parses back to this request.
    public var line: String {
        if op == .list { return "list" }
        var s = "\(op.rawValue) proto=\(proto) src=\(Sys.formatAddress(hi: src.hi, lo: src.lo)) sport=\(src.port)"
            + " dst=\(Sys.formatAddress(hi: dst.hi, lo: dst.lo)) dport=\(dst.port)"
        if op == .add {
            s += " dir=\(forwardOnly ? "forward" : "both")"
            if idleSeconds > 0 { s += " idle=\(idleSeconds)" }
            if hardSeconds > 0 { s += " hard=\(hardSeconds)" }
        }
        if let vlan { s += " vlan=\(vlan)" }
        if let vni { s += " vni=\(vni)" }
        return s
    }
}
