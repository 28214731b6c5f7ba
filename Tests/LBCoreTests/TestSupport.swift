import Foundation
import LBCore
import LBGen
// the Zeek corpus (Corpus.root, Corpus.traces()) and readCapture: the shared test support
@_exported import LBTestSupport
import Testing

// Shared by the decoder, hash and fuzz tests: decoding a [UInt8], rebuilding the bytes a ring
// would receive, expected flow keys, and where the Zeek corpus lives.

/// Decodes `frame` from an allocation of exactly its size (so the address sanitizer sees any
/// read past the end; an Array's spare capacity would hide it).
func decodeFrame(_ frame: [UInt8], link: LinkType = .ethernet, decoder: Decoder = Decoder(), subframe: Int = 0) -> Decoded {
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: frame.count, alignment: 1)
    defer { buf.deallocate() }
    if !frame.isEmpty { buf.copyBytes(from: frame) }
    return decoder.decode(UnsafeRawBufferPointer(buf), link: link, subframe: subframe)
}

func decodeFrame(_ frame: [UInt8], link: LinkType = .ethernet, config: DecodeConfig, subframe: Int = 0) -> Decoded {
    decodeFrame(frame, link: link, decoder: Decoder(config), subframe: subframe)
}

/// The packet a worker receives: the synthesized Ethernet header (if any), then frame[start..<end].
func deliveredBytes(_ frame: [UInt8], _ d: Decoded) -> [UInt8] {
    var out: [UInt8] = []
    if d.synthType != 0 {
        out += d.synthDst >= 0 ? Array(frame[d.synthDst..<d.synthDst + 6]) : [0, 0, 0, 0, 0, 0]
        out += d.synthSrc >= 0 ? Array(frame[d.synthSrc..<d.synthSrc + 6]) : [0, 0, 0, 0, 0, 0]
        out += [UInt8(d.synthType >> 8), UInt8(d.synthType & 0xFF)]
    }
    return out + frame[d.start..<d.end]
}

/// An Ethernet header of `type` with zero MACs (what the decoder synthesizes without MACs).
func zeroEthernet(_ type: UInt16) -> [UInt8] { [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, UInt8(type >> 8), UInt8(type & 0xFF)] }

/// The FlowKey the decoder should produce for an IP flow.
func flowKey(_ src: IPAddress, _ sport: UInt16, _ dst: IPAddress, _ dport: UInt16, proto: UInt8,
             kind: FlowKey.Kind = .ports) -> FlowKey {
    var k = FlowKey()
    (k.srcHi, k.srcLo) = src.keyHalves
    (k.dstHi, k.dstLo) = dst.keyHalves
    k.proto = proto
    k.kind = kind
    if kind == .ports { k.sport = sport; k.dport = dport }
    return k
}

func flowKey(_ src: IPv4, _ sport: UInt16, _ dst: IPv4, _ dport: UInt16, proto: UInt8, kind: FlowKey.Kind = .ports) -> FlowKey {
    flowKey(.v4(src), sport, .v4(dst), dport, proto: proto, kind: kind)
}

func flowKey(_ src: IPv6, _ sport: UInt16, _ dst: IPv6, _ dport: UInt16, proto: UInt8, kind: FlowKey.Kind = .ports) -> FlowKey {
    flowKey(.v6(src), sport, .v6(dst), dport, proto: proto, kind: kind)
}

/// The same flow seen from the other side.
func reversed(_ k: FlowKey) -> FlowKey {
    var r = k
    swap(&r.srcHi, &r.dstHi); swap(&r.srcLo, &r.dstLo); swap(&r.sport, &r.dport)
    return r
}

func hashOf(_ k: FlowKey, _ mode: TupleMode = .five, extra: UInt32 = 0, seeds: HashSeeds = .standard) -> UInt64 {
    FlowHash.hash(k, mode: mode, extra: extra, seeds: seeds)
}

/// The worker of `n` a hash picks: `(hash >> 32) * n >> 32` (multiply-shift, no division).
/// In Swift `>>` binds tighter than `*`, hence the parentheses.
func bucket(_ hash: UInt64, _ n: Int) -> Int { Int(((hash >> 32) * UInt64(n)) >> 32) }

/// Every link type the decoder accepts.
let allLinkTypes: [LinkType] = [.null, .ethernet, .raw, .ieee80211, .loop, .linuxSLL, .radiotap, .ipv4, .ipv6, .linuxSLL2,
                                .ppp, .pppHDLC, .nflog, .fddi]

/// Frames built from layers (shorthand).
func build(_ layers: Layer...) -> [UInt8] { PacketBuilder.build(layers) }
func build(_ layers: [Layer]) -> [UInt8] { PacketBuilder.build(layers) }

// MARK: Addresses used throughout

enum Addr {
    static let c4: IPv4 = "10.0.0.1", s4: IPv4 = "10.0.0.2"
    static let c6: IPv6 = "2001:db8::1", s6: IPv6 = "2001:db8::2"
    /// outer (tunnel) endpoints
    static let o4: IPv4 = "192.0.2.1", t4: IPv4 = "192.0.2.2"
    static let o6: IPv6 = "2001:db8:ff::1", t6: IPv6 = "2001:db8:ff::2"
}

/// The inner flows the tunnel tests carry: TCP over IPv4, UDP over IPv6.
let inner4: [Layer] = [.ipv4(src: Addr.c4, dst: Addr.s4), .tcp(sport: 1234, dport: 80, seq: 100, flags: [.psh, .ack]), .filler(20)]
let inner6: [Layer] = [.ipv6(src: Addr.c6, dst: Addr.s6), .udp(sport: 5353, dport: 53), .filler(20)]
let inner4Key = flowKey(Addr.c4, 1234, Addr.s4, 80, proto: 6)
let inner6Key = flowKey(Addr.c6, 5353, Addr.s6, 53, proto: 17)
