import LBCore

/// A flow with its two endpoints in a canonical order, so both directions compare equal: the
/// ground truth a test compares the decoder's FlowKey with.
public struct FlowTuple: Hashable, Sendable, CustomStringConvertible {
    public struct Endpoint: Hashable, Comparable, Sendable {
        /// the address as FlowKey stores it (IPv4 as ::ffff:a.b.c.d)
        public var hi: UInt64
        public var lo: UInt64
        public var port: UInt16
        public init(hi: UInt64, lo: UInt64, port: UInt16) { self.hi = hi; self.lo = lo; self.port = port }
        public static func < (a: Endpoint, b: Endpoint) -> Bool { (a.hi, a.lo, a.port) < (b.hi, b.lo, b.port) }
    }

    /// the smaller endpoint
    public var a: Endpoint
    /// the larger endpoint
    public var b: Endpoint
    public var proto: UInt8

    public init(_ x: Endpoint, _ y: Endpoint, proto: UInt8) {
        if y < x { a = y; b = x } else { a = x; b = y }
        self.proto = proto
    }

    public init(src: IPAddress, sport: UInt16, dst: IPAddress, dport: UInt16, proto: UInt8) {
        let s = src.keyHalves, d = dst.keyHalves
        self.init(Endpoint(hi: s.hi, lo: s.lo, port: sport), Endpoint(hi: d.hi, lo: d.lo, port: dport), proto: proto)
    }

    /// The flow of a decoded key (ports only when the key has them).
    public init(_ k: FlowKey) {
        let ports = k.kind == .ports
        self.init(Endpoint(hi: k.srcHi, lo: k.srcLo, port: ports ? k.sport : 0),
                  Endpoint(hi: k.dstHi, lo: k.dstLo, port: ports ? k.dport : 0), proto: k.proto)
    }

    /// The same flow without ports (what a non-first fragment can tell).
    public var withoutPorts: FlowTuple {
        FlowTuple(Endpoint(hi: a.hi, lo: a.lo, port: 0), Endpoint(hi: b.hi, lo: b.lo, port: 0), proto: proto)
    }

    public var isIPv4: Bool { a.hi == 0 && a.lo >> 32 == 0xFFFF }

    public var description: String {
        func addr(_ e: Endpoint) -> String {
            if e.hi == 0 && e.lo >> 32 == 0xFFFF { return IPv4(UInt32(e.lo & 0xFFFF_FFFF)).description }
            return "[\(IPv6(hi: e.hi, lo: e.lo))]"
        }
        return "\(addr(a)):\(a.port) <-> \(addr(b)):\(b.port) proto \(proto)"
    }
}
