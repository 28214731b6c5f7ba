import LBSys

/// A group whose members are not local rings (docs/scale-out.md): remote hosts, reached inside
/// VXLAN over UDP, or local interfaces (tool ports). Member i is fed by ring i of the group, so
/// lb's bucket tables, drop counters and failover apply to members as they do to workers.
public struct ForwardGroup: Sendable, Equatable {
    public enum Member: Sendable, Equatable, CustomStringConvertible {
        /// VXLAN to ADDR:PORT (address: 4 or 16 bytes)
        case vxlan(address: [UInt8], port: UInt16, text: String)
        /// frames sent out of a local interface as they are
        case port(interface: String)

        public var description: String {
            switch self {
            case .vxlan(_, let port, let text): text.contains(":") ? "vxlan [\(text)]:\(port)" : "vxlan \(text):\(port)"
            case .port(let i): "port \(i)"
            }
        }
    }

    public var name: String
    public var members: [Member]
    /// the VNI of the VXLAN header (one per group)
    public var vni: UInt32
    /// `--forward-vni GROUP=packet`: each packet's own innermost tunnel id (VNI, GRE key, TEID)
    /// when it came in a tunnel and the id fits 24 bits; `vni` for the others
    public var packetVNI = false
    /// ask the remote lb whether it is there (its udp:: input answers); without it a remote
    /// member is taken as always up
    public var keepalive = true

    public init(name: String, members: [Member], vni: UInt32, keepalive: Bool = true) {
        self.name = name
        self.members = members
        self.vni = vni
        self.keepalive = keepalive
    }

    /// `vxlan=ADDR[:PORT],ADDR[:PORT]...` or `port=IFACE,IFACE...` (the part of `-p` after
    /// `NAME:`); nil when `text` is not a member list.
    public static func members(parsing text: String) throws(SysError) -> [Member]? {
        if text.hasPrefix("vxlan=") {
            var out: [Member] = []
            for item in text.dropFirst(6).split(separator: ",") {
                var host = String(item), port: UInt16 = 4789
                if host.hasPrefix("[") {                        // [v6]:port
                    guard let close = host.firstIndex(of: "]") else { throw SysError("\(item): a bracket is not closed") }
                    let rest = host[host.index(after: close)...]
                    if rest.hasPrefix(":") {
                        guard let p = UInt16(rest.dropFirst()), p > 0 else { throw SysError("\(item): bad port") }
                        port = p
                    }
                    host = String(host[host.index(after: host.startIndex)..<close])
                } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
                    guard let p = UInt16(host[host.index(after: colon)...]), p > 0 else { throw SysError("\(item): bad port") }
                    port = p
                    host = String(host[..<colon])
                }
                guard let a = Sys.parseAddress(host) else { throw SysError("\(item): not an IPv4 or IPv6 address") }
                let v4 = a.hi == 0 && a.lo >> 32 == 0xFFFF
                var bytes: [UInt8] = []
                if v4 {
                    for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: a.lo >> UInt64(24 - 8 * i))) }
                } else {
                    for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: a.hi >> UInt64(56 - 8 * i))) }
                    for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: a.lo >> UInt64(56 - 8 * i))) }
                }
                out.append(.vxlan(address: bytes, port: port, text: host))
            }
            guard !out.isEmpty else { throw SysError("vxlan=: no address") }
            return out
        }
        if text.hasPrefix("port=") {
            let names = text.dropFirst(5).split(separator: ",").map(String.init)
            guard !names.isEmpty else { throw SysError("port=: no interface") }
            return names.map { .port(interface: $0) }
        }
        return nil
    }
}
