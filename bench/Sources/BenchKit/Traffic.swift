import Glibc
import LBCore

/// The three benchmark inputs, made here (not with LBGen) and written to classic pcap files
/// that both lb's benchmark and the C yardstick read, so the two see the same bytes.
public enum Traffic {
    /// A small deterministic generator (splitmix64).
    struct RNG {
        var s: UInt64
        mutating func next() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// A packet under construction: appends big-endian fields.
    struct Builder {
        var b: [UInt8] = []
        init(capacity: Int) { b.reserveCapacity(capacity) }
        mutating func u8(_ v: UInt8) { b.append(v) }
        mutating func u16(_ v: UInt16) { b.append(UInt8(v >> 8)); b.append(UInt8(v & 0xFF)) }
        mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(v & 0xFFFF)) }
        mutating func mac(_ v: UInt64) { for i in (0..<6).reversed() { b.append(UInt8((v >> (8 * UInt64(i))) & 0xFF)) } }
        mutating func zeros(_ n: Int) { for i in 0..<n { b.append(UInt8(truncatingIfNeeded: i &* 7)) } }

        mutating func ethernet(dst: UInt64, src: UInt64, type: UInt16) { mac(dst); mac(src); u16(type) }

        /// IPv4 header with a correct header checksum.
        mutating func ipv4(src: UInt32, dst: UInt32, proto: UInt8, payload: Int, id: UInt16) {
            let at = b.count
            u8(0x45); u8(0); u16(UInt16(20 + payload)); u16(id); u16(0x4000); u8(64); u8(proto); u16(0)
            u32(src); u32(dst)
            var sum: UInt32 = 0
            for i in stride(from: at, to: at + 20, by: 2) { sum += UInt32(b[i]) << 8 | UInt32(b[i + 1]) }
            while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
            let c = ~UInt16(sum)
            b[at + 10] = UInt8(c >> 8); b[at + 11] = UInt8(c & 0xFF)
        }

        mutating func udp(sport: UInt16, dport: UInt16, payload: Int) { u16(sport); u16(dport); u16(UInt16(8 + payload)); u16(0) }

        mutating func tcp(sport: UInt16, dport: UInt16, seq: UInt32) {
            u16(sport); u16(dport); u32(seq); u32(0); u8(0x50); u8(0x18); u16(0xFFFF); u16(0); u16(0)
        }
    }

    /// One flow's endpoints.
    struct Flow {
        var a: UInt32, b: UInt32, aport: UInt16, bport: UInt16, tcp: Bool, amac: UInt64, bmac: UInt64
    }

    static let serverPorts: [UInt16] = [53, 123, 443, 8080, 5353, 1812, 514, 161]

    /// `count` client/server flows. Ports stay clear of the UDP tunnel ports lb decapsulates
    /// (4789, 6081, 2152, 3544, 5072, 4754).
    static func flows(_ count: Int, tcpShare: Int, rng: inout RNG) -> [Flow] {
        (0..<count).map { i in
            let r = rng.next()
            return Flow(a: 0x0A00_0000 | UInt32(truncatingIfNeeded: r & 0x00FF_FFFF),
                        b: 0xC0A8_0000 | UInt32(truncatingIfNeeded: (r >> 24) & 0xFFFF),
                        aport: UInt16(32768 + i % 28000),
                        bport: serverPorts[Int((r >> 40) % UInt64(serverPorts.count))],
                        tcp: i % 100 < tcpShare,
                        amac: 0x0200_0000_0000 | (r >> 16 & 0xFF_FFFF), bmac: 0x0200_0100_0000 | (r & 0xFFFF))
        }
    }

    /// An Ethernet frame of `size` bytes (without FCS; 60 is the 64-byte minimum on the wire)
    /// of one direction of `f`: IPv4, then UDP or TCP, then filler.
    static func frame(_ f: Flow, reverse: Bool, size: Int, id: UInt16) -> [UInt8] {
        var p = Builder(capacity: size)
        let (sm, dm) = reverse ? (f.bmac, f.amac) : (f.amac, f.bmac)
        let (sa, da) = reverse ? (f.b, f.a) : (f.a, f.b)
        let (sp, dp) = reverse ? (f.bport, f.aport) : (f.aport, f.bport)
        p.ethernet(dst: dm, src: sm, type: 0x0800)
        let l4 = f.tcp ? 20 : 8
        let payload = size - 14 - 20 - l4
        p.ipv4(src: sa, dst: da, proto: f.tcp ? 6 : 17, payload: l4 + payload, id: id)
        if f.tcp { p.tcp(sport: sp, dport: dp, seq: UInt32(id) &* 1000) } else { p.udp(sport: sp, dport: dp, payload: payload) }
        p.zeros(payload)
        return p.b
    }

    /// (a) Minimum-size frames (60 bytes captured, 64 on the wire) of `flows` UDP flows, in
    /// both directions, in a random order.
    public static func udp64(flows count: Int = 4096, packets: Int = 65536, seed: UInt64 = 1) -> [[UInt8]] {
        var rng = RNG(s: seed)
        let fs = flows(count, tcpShare: 0, rng: &rng)
        return (0..<packets).map { i in
            let r = rng.next()
            return frame(fs[Int(r % UInt64(count))], reverse: r >> 63 != 0, size: 60, id: UInt16(truncatingIfNeeded: i))
        }
    }

    /// (c) VXLAN: inner minimum-size frames (60 bytes) of `flows` flows, half TCP, half UDP, in
    /// Ethernet/IPv4/UDP:4789/VXLAN between 8 x 4 VTEPs, 16 VNIs. The outer UDP source port is
    /// derived from the inner flow (as VTEPs do), so it varies by flow. 110-byte frames.
    public static func vxlan(flows count: Int = 4096, packets: Int = 65536, seed: UInt64 = 3) -> [[UInt8]] {
        var rng = RNG(s: seed)
        let fs = flows(count, tcpShare: 50, rng: &rng)
        return (0..<packets).map { i in
            let r = rng.next()
            let fi = Int(r % UInt64(count))
            let inner = frame(fs[fi], reverse: r >> 63 != 0, size: 60, id: UInt16(truncatingIfNeeded: i))
            var p = Builder(capacity: 50 + inner.count)
            let vtepA = UInt32(0xAC10_0001 + fi % 8), vtepB = UInt32(0xAC10_0101 + fi % 4)
            let reverse = r >> 63 != 0
            p.ethernet(dst: reverse ? 0x0200_AA00_0001 : 0x0200_BB00_0001, src: reverse ? 0x0200_BB00_0001 : 0x0200_AA00_0001, type: 0x0800)
            p.ipv4(src: reverse ? vtepB : vtepA, dst: reverse ? vtepA : vtepB, proto: 17, payload: 8 + 8 + inner.count,
                   id: UInt16(truncatingIfNeeded: i))
            let entropy = UInt16(truncatingIfNeeded: (UInt64(fi) &* 0x9E37_79B9_7F4A_7C15) >> 50)
            p.udp(sport: 49152 | entropy, dport: 4789, payload: 8 + inner.count)
            p.u8(0x08); p.u8(0); p.u16(0)
            p.u32(UInt32(1000 + fi % 16) << 8)
            p.b.append(contentsOf: inner)
            return p.b
        }
    }

    /// (b) The Ethernet packets of the given capture files, concatenated in order (timestamps
    /// made monotonic across files). Throws a message for a file it cannot read.
    public static func traces(_ paths: [String]) throws(BenchError) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for path in paths {
            let bytes = try readFile(path)
            let problem: String? = bytes.withUnsafeBytes { raw in
                var reader: CaptureReader
                do { reader = try CaptureReader(raw) } catch { return "\(path): \(error)" }
                while let p = reader.next() {
                    guard p.linkType == 1 else { continue }
                    out.append(Array(p.data))
                }
                return nil
            }
            if let problem { throw BenchError(problem) }
        }
        return out
    }

    /// Writes frames as a classic pcap (nanosecond timestamps, 67.2 ns apart: 10 GbE line rate
    /// of 64-byte frames).
    public static func writePcap(_ frames: [[UInt8]], to path: String) throws(BenchError) {
        let packets = frames.enumerated().map { (i, f) in (timestampNanos: 1_700_000_000_000_000_000 + UInt64(i) * 672 / 10, bytes: f) }
        let file = Pcap.file(linkType: 1, nanosecond: true, packets: packets)
        guard let fp = fopen(path, "wb") else { throw BenchError("cannot create \(path)") }
        defer { fclose(fp) }
        let n = file.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, fp) }
        guard n == file.count else { throw BenchError("short write to \(path)") }
    }

    public static func readFile(_ path: String) throws(BenchError) -> [UInt8] {
        guard let fp = fopen(path, "rb") else { throw BenchError("cannot open \(path)") }
        defer { fclose(fp) }
        fseek(fp, 0, SEEK_END)
        let size = ftell(fp)
        fseek(fp, 0, SEEK_SET)
        guard size >= 0 else { throw BenchError("cannot size \(path)") }
        var b = [UInt8](repeating: 0, count: size)
        let n = b.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, fp) }
        guard n == size else { throw BenchError("short read of \(path)") }
        return b
    }
}

public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
