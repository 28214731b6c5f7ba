import Foundation
import LBTestSupport
import Testing

@testable import LBCore

// MARK: - Helpers

/// Reading helpers shared by the capture tests.
enum CaptureCheck {
    /// One packet as read, copied out of the buffer.
    struct Packet: Equatable {
        var data: [UInt8]
        var timestampNanos: UInt64
        var wireLength: Int
        var linkType: UInt32
        var interface: Int
    }

    /// Everything a reader produced for some bytes.
    struct Result {
        var error: CaptureError?
        var packets: [Packet] = []
        var stoppedEarly: String?
        var isPcapng = false
    }

    /// Reads `bytes` to the end, checking the invariants that must hold for any input: packets lie
    /// inside the buffer, wire length >= captured length, reading ends within a bounded number of
    /// calls, and stays ended.
    static func readAll(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Result {
        bytes.withUnsafeBytes { readAll($0, sourceLocation: sourceLocation) }
    }

    static func readAll(_ buf: UnsafeRawBufferPointer, sourceLocation: SourceLocation = #_sourceLocation) -> Result {
        var result = Result()
        var r: CaptureReader
        do {
            r = try CaptureReader(buf)
        } catch {
            result.error = error
            return result
        }
        result.isPcapng = r.isPcapng
        let lo = UInt(bitPattern: buf.baseAddress), hi = lo + UInt(buf.count)
        var calls = 0
        while let p = r.next() {
            calls += 1
            if calls > buf.count / 12 + 1 {
                Issue.record("reader did not stop: \(calls) packets from \(buf.count) bytes", sourceLocation: sourceLocation)
                return result
            }
            if p.data.count > 0 {
                let start = UInt(bitPattern: p.data.baseAddress)
                #expect(start >= lo && start + UInt(p.data.count) <= hi, "packet outside the buffer", sourceLocation: sourceLocation)
            }
            #expect(p.wireLength >= p.data.count, sourceLocation: sourceLocation)
            result.packets.append(Packet(
                data: Array(p.data), timestampNanos: p.timestampNanos, wireLength: p.wireLength,
                linkType: p.linkType, interface: p.interface))
        }
        #expect(r.next() == nil, "reader restarted after its end", sourceLocation: sourceLocation)
        result.stoppedEarly = r.stoppedEarly
        return result
    }
}

/// Builds bytes in a chosen byte order.
private struct ByteWriter {
    var big = false
    var out: [UInt8] = []

    mutating func u8(_ v: UInt8) { out.append(v) }
    mutating func u16(_ v: UInt16) { append(big ? v.bigEndian : v.littleEndian) }
    mutating func u32(_ v: UInt32) { append(big ? v.bigEndian : v.littleEndian) }
    mutating func u64(_ v: UInt64) { append(big ? v.bigEndian : v.littleEndian) }
    mutating func bytes(_ b: [UInt8]) { out += b }
    mutating func pad4() { while out.count % 4 != 0 { out.append(0) } }

    private mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v) { out += $0 }
    }
}

/// Builds a pcapng file block by block, remembering where blocks (and packet blocks) end.
private struct PcapngBuilder {
    var w = ByteWriter()
    var blockEnds: [Int] = []
    var packetEnds: [Int] = []

    var bytes: [UInt8] { w.out }

    /// Any block: `body` is padded to 4 bytes; `length` overrides the total length fields.
    mutating func block(_ type: UInt32, _ body: [UInt8], packet: Bool = false, length: UInt32? = nil, trailer: UInt32? = nil) {
        let padded = (body.count + 3) & ~3
        let len = length ?? UInt32(12 + padded)
        w.u32(type)
        w.u32(len)
        w.bytes(body)
        w.pad4()
        w.u32(trailer ?? len)
        blockEnds.append(w.out.count)
        if packet { packetEnds.append(w.out.count) }
    }

    /// A body writer in the current section's byte order.
    func body() -> ByteWriter { ByteWriter(big: w.big) }

    mutating func shb(big: Bool, major: UInt16 = 1, magic: UInt32 = 0x1A2B_3C4D) {
        w.big = big
        var b = body()
        b.u32(magic)
        b.u16(major)
        b.u16(0)
        b.u64(UInt64.max)  // section length unknown
        block(0x0A0D_0D0A, b.out)
    }

    mutating func idb(link: UInt16, snaplen: UInt32 = 0, options: [(code: UInt16, value: [UInt8])] = []) {
        var b = body()
        b.u16(link)
        b.u16(0)
        b.u32(snaplen)
        for o in options {
            b.u16(o.code)
            b.u16(UInt16(o.value.count))
            b.bytes(o.value)
            b.pad4()
        }
        if !options.isEmpty { b.u32(0) }  // opt_endofopt
        block(1, b.out)
    }

    mutating func epb(ifid: UInt32, ts: UInt64, data: [UInt8], caplen: UInt32? = nil, wire: UInt32? = nil) {
        var b = body()
        b.u32(ifid)
        b.u32(UInt32(ts >> 32))
        b.u32(UInt32(truncatingIfNeeded: ts))
        b.u32(caplen ?? UInt32(data.count))
        b.u32(wire ?? UInt32(data.count))
        b.bytes(data)
        b.pad4()
        b.u16(1); b.u16(4); b.bytes([0, 0, 0, 1])  // an epb_flags option, to be ignored
        b.u32(0)
        block(6, b.out, packet: true)
    }

    mutating func spb(wire: UInt32, data: [UInt8]) {
        var b = body()
        b.u32(wire)
        b.bytes(data)
        block(3, b.out, packet: true)
    }

    mutating func packetBlock(ifid: UInt16, ts: UInt64, data: [UInt8]) {
        var b = body()
        b.u16(ifid)
        b.u16(0)  // drops
        b.u32(UInt32(ts >> 32))
        b.u32(UInt32(truncatingIfNeeded: ts))
        b.u32(UInt32(data.count))
        b.u32(UInt32(data.count) + 10)
        b.bytes(data)
        block(2, b.out, packet: true)
    }
}

private func payload(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0) &+ seed } }

/// A small pcapng file exercising every block the reader handles or skips.
private func samplePcapng() -> PcapngBuilder {
    var b = PcapngBuilder()
    b.shb(big: false)
    b.idb(link: 1, snaplen: 65535)
    b.idb(link: 101, snaplen: 0, options: [(2, Array("eth1".utf8)), (9, [9]), (14, [1, 0, 0, 0, 0, 0, 0, 0])])
    b.epb(ifid: 0, ts: 1_600_000_000_123_456, data: payload(60, seed: 1))
    b.block(4, [0, 0, 0, 0])  // name resolution: skipped
    b.epb(ifid: 1, ts: 1_600_000_000_123_456_789, data: payload(41, seed: 2), wire: 1500)
    b.spb(wire: 70, data: payload(64, seed: 3))
    b.block(5, [UInt8](repeating: 0, count: 20))  // interface statistics: skipped
    b.packetBlock(ifid: 0, ts: 1_700_000_000_000_001, data: payload(33, seed: 4))
    b.block(0x0BAD, [1, 2, 3, 4, 5, 6, 7, 8])  // custom: skipped
    b.block(0x1234_5678, [])  // unknown: skipped
    return b
}

/// A small classic pcap file, with the offsets where its records end.
private func samplePcap() -> (bytes: [UInt8], recordEnds: [Int]) {
    let packets = [(UInt64(1_000_000_000_000_000_000), payload(60, seed: 1)), (1_000_000_001_000_001_000, []), (1_000_000_002_999_999_000, payload(99, seed: 7))]
    let bytes = Pcap.file(linkType: 1, nanosecond: false, packets: packets.map { (timestampNanos: $0.0, bytes: $0.1) })
    var ends: [Int] = []
    var at = Pcap.fileHeaderSize
    for p in packets { at += Pcap.recordHeaderSize + p.1.count; ends.append(at) }
    return (bytes, ends)
}

/// A deterministic generator for the fuzz tests.
private struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - Well-formed files

@Suite struct CaptureReaderTests {
    @Test func pcapngEveryBlockKind() {
        let r = CaptureCheck.readAll(samplePcapng().bytes)
        #expect(r.error == nil)
        #expect(r.isPcapng)
        #expect(r.stoppedEarly == nil)
        #expect(r.packets == [
            CaptureCheck.Packet(data: payload(60, seed: 1), timestampNanos: 1_600_000_000_123_456_000, wireLength: 60, linkType: 1, interface: 0),
            // if_tsresol 10^-9 and if_tsoffset +1 s
            CaptureCheck.Packet(data: payload(41, seed: 2), timestampNanos: 1_600_000_001_123_456_789, wireLength: 1500, linkType: 101, interface: 1),
            CaptureCheck.Packet(data: payload(64, seed: 3), timestampNanos: 0, wireLength: 70, linkType: 1, interface: 0),
            CaptureCheck.Packet(data: payload(33, seed: 4), timestampNanos: 1_700_000_000_000_001_000, wireLength: 43, linkType: 1, interface: 0),
        ])
    }

    @Test func pcapngSnaplenAndSimplePacketTruncation() throws {
        var b = PcapngBuilder()
        b.shb(big: true)
        b.idb(link: 1, snaplen: 128)
        b.spb(wire: 1000, data: payload(128, seed: 0))  // captured 128 of 1000
        b.spb(wire: 5, data: payload(8, seed: 0))  // 3 bytes of padding
        let bytes = b.bytes
        try bytes.withUnsafeBytes { buf in
            var r = try CaptureReader(buf)
            #expect(r.snaplen == nil)
            let n1 = r.next()
            let p1 = try #require(n1)
            #expect(r.snaplen == 128)
            #expect(p1.data.count == 128 && p1.wireLength == 1000)
            let n2 = r.next()
            let p2 = try #require(n2)
            #expect(Array(p2.data) == payload(5, seed: 0) && p2.wireLength == 5)
            let n3 = r.next()
            #expect(n3 == nil && r.stoppedEarly == nil)
        }
    }

    @Test(arguments: [(UInt8(0x80 | 20), UInt64(3 << 20 | 1 << 19), UInt64(3_500_000_000)),  // 2^-20 s units
                      (UInt8(0x80 | 0), UInt64(7), UInt64(7_000_000_000)),  // whole seconds
                      (UInt8(3), UInt64(12_345), UInt64(12_345_000_000)),  // milliseconds
                      (UInt8(12), UInt64(1_000_000_000_999), UInt64(1_000_000_000)),  // picoseconds, truncated
                      (UInt8(19), UInt64.max, UInt64(1_844_674_407))])  // 10^-19
    func pcapngTimestampResolution(resol: UInt8, ts: UInt64, nanos: UInt64) {
        var b = PcapngBuilder()
        b.shb(big: false)
        b.idb(link: 1, options: [(9, [resol])])
        b.epb(ifid: 0, ts: ts, data: [1])
        let r = CaptureCheck.readAll(b.bytes)
        #expect(r.stoppedEarly == nil)
        #expect(r.packets.map(\.timestampNanos) == [nanos])
    }

    @Test func pcapngNegativeTimestampOffset() {
        var b = PcapngBuilder()
        b.shb(big: true)
        var off = ByteWriter(big: true)
        off.u64(UInt64(bitPattern: -10))
        b.idb(link: 1, options: [(14, off.out)])
        b.epb(ifid: 0, ts: 100_000_001, data: [1])
        #expect(CaptureCheck.readAll(b.bytes).packets.map(\.timestampNanos) == [90_000_001_000])
    }

    @Test func pcapngSectionsWithDifferentByteOrders() {
        var b = PcapngBuilder()
        b.shb(big: false)
        b.idb(link: 1)
        b.idb(link: 113)
        b.epb(ifid: 1, ts: 1_000_000, data: payload(10, seed: 1))
        b.shb(big: true)  // interfaces reset
        b.idb(link: 101, options: [(9, [9])])
        b.epb(ifid: 0, ts: 2_000_000_000, data: payload(20, seed: 2))
        b.shb(big: false)
        b.idb(link: 228)
        b.epb(ifid: 0, ts: 3_000_000, data: payload(30, seed: 3))
        let r = CaptureCheck.readAll(b.bytes)
        #expect(r.stoppedEarly == nil)
        #expect(r.packets.map(\.linkType) == [113, 101, 228])
        #expect(r.packets.map(\.interface) == [1, 0, 0])
        #expect(r.packets.map(\.timestampNanos) == [1_000_000_000, 2_000_000_000, 3_000_000_000])
        #expect(r.packets.map(\.data) == [payload(10, seed: 1), payload(20, seed: 2), payload(30, seed: 3)])

        // The second section's interface table starts empty: interface 1 no longer exists.
        var c = PcapngBuilder()
        c.shb(big: false)
        c.idb(link: 1)
        c.idb(link: 1)
        c.shb(big: true)
        c.idb(link: 1)
        c.epb(ifid: 1, ts: 0, data: [1])
        let s = CaptureCheck.readAll(c.bytes)
        #expect(s.packets.isEmpty)
        #expect(s.stoppedEarly?.contains("interface 1") == true)
    }

    @Test(arguments: [false, true])
    func classicPcapByHand(big: Bool) {
        for nano in [false, true] {
            var w = ByteWriter(big: big)
            w.u32(nano ? 0xA1B2_3C4D : 0xA1B2_C3D4)
            w.u16(2); w.u16(4); w.u32(0); w.u32(0)
            w.u32(65535)
            w.u32(0x1400_0000 | 105)  // FCS bits above the link type
            w.u32(1_500_000_000); w.u32(999); w.u32(4); w.u32(2)  // orig_len < incl_len
            w.bytes([1, 2, 3, 4])
            w.u32(1_500_000_001); w.u32(0); w.u32(0); w.u32(9000)
            let r = CaptureCheck.readAll(w.out)
            #expect(r.error == nil && r.stoppedEarly == nil && !r.isPcapng)
            #expect(r.packets == [
                CaptureCheck.Packet(data: [1, 2, 3, 4], timestampNanos: 1_500_000_000_000_000_000 + (nano ? 999 : 999_000), wireLength: 4, linkType: 105, interface: 0),
                CaptureCheck.Packet(data: [], timestampNanos: 1_500_000_001_000_000_000, wireLength: 9000, linkType: 105, interface: 0),
            ])
            #expect(w.out.withUnsafeBytes { try? CaptureReader($0).snaplen } == 65535)
        }
    }

    @Test func classicPcapOldVersionsSwapLengths() {
        for minor in [UInt16(2), 3, 4] {
            var w = ByteWriter()
            w.u32(0xA1B2_C3D4); w.u16(2); w.u16(minor); w.u32(0); w.u32(0); w.u32(65535); w.u32(1)
            w.u32(1); w.u32(0); w.u32(60); w.u32(4)  // caplen 60, len 4: swapped before 2.4
            w.bytes(payload(60, seed: 0))
            let r = CaptureCheck.readAll(w.out)
            if minor < 4 {
                // Read as caplen 4, len 60: the rest of the data is then a malformed record.
                #expect(r.packets.first?.data.count == 4 && r.packets.first?.wireLength == 60)
            } else {
                #expect(r.packets.map(\.wireLength) == [60])
                #expect(r.stoppedEarly == nil)
            }
        }
    }

    @Test func openErrors() {
        func open(_ b: [UInt8]) -> CaptureError? { CaptureCheck.readAll(b).error }
        #expect(open([]) == .tooShort)
        #expect(open([0xD4, 0xC3, 0xB2]) == .tooShort)
        #expect(open([0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0]) == .tooShort)
        #expect(open([1, 2, 3, 4, 5, 6, 7, 8]) == .badMagic(0x0102_0304))
        var v = ByteWriter()
        v.u32(0xA1B2_C3D4); v.u16(3); v.u16(0); v.bytes([UInt8](repeating: 0, count: 16))
        #expect(open(v.out) == .unsupportedVersion(major: 3, minor: 0))

        var ng = PcapngBuilder()
        ng.shb(big: false, major: 2)
        #expect(open(ng.bytes) == .unsupportedVersion(major: 2, minor: 0))
        var bom = PcapngBuilder()
        bom.shb(big: false, magic: 0x1A2B_3C4E)
        guard case .badHeader(let m)? = open(bom.bytes) else { Issue.record("unknown byte-order magic accepted"); return }
        #expect(m.contains("byte-order magic"))
        // An empty pcap and an SHB-only pcapng are fine and empty.
        let empty = CaptureCheck.readAll(Pcap.file(linkType: 1, nanosecond: true, packets: []))
        #expect(empty.error == nil && empty.packets.isEmpty && empty.stoppedEarly == nil)
        var shbOnly = PcapngBuilder()
        shbOnly.shb(big: true)
        let e2 = CaptureCheck.readAll(shbOnly.bytes)
        #expect(e2.error == nil && e2.packets.isEmpty && e2.stoppedEarly == nil && e2.isPcapng)
    }

    // MARK: - Hostile input

    @Test func truncatedPcapAtEveryLength() {
        let (full, ends) = samplePcap()
        let all = CaptureCheck.readAll(full).packets
        #expect(all.count == 3)
        for n in 0..<full.count {
            let r = CaptureCheck.readAll(Array(full[..<n]))
            if n < Pcap.fileHeaderSize {
                #expect(r.error == .tooShort, "cut at \(n)")
                continue
            }
            let complete = ends.filter { $0 <= n }.count
            #expect(r.packets == Array(all.prefix(complete)), "cut at \(n)")
            let onBoundary = n == Pcap.fileHeaderSize || ends.contains(n)
            #expect((r.stoppedEarly == nil) == onBoundary, "cut at \(n): \(r.stoppedEarly ?? "clean")")
        }
    }

    @Test func truncatedPcapngAtEveryLength() {
        let b = samplePcapng()
        let full = b.bytes
        let all = CaptureCheck.readAll(full).packets
        #expect(all.count == 4)
        let shbEnd = b.blockEnds[0]
        for n in 0..<full.count {
            let r = CaptureCheck.readAll(Array(full[..<n]))
            if n < shbEnd {
                #expect(r.error == .tooShort, "cut at \(n)")
                continue
            }
            let complete = b.packetEnds.filter { $0 <= n }.count
            #expect(r.packets == Array(all.prefix(complete)), "cut at \(n)")
            #expect((r.stoppedEarly == nil) == b.blockEnds.contains(n), "cut at \(n): \(r.stoppedEarly ?? "clean")")
            if let last = b.blockEnds.last(where: { $0 <= n }), n - last > 0, n - last < 12 {
                #expect(r.stoppedEarly?.hasPrefix("truncated block header at offset \(last)") == true, "cut at \(n)")
            }
        }
    }

    @Test func pcapRecordLongerThanTheFile() {
        var (bytes, _) = samplePcap()
        bytes[Pcap.fileHeaderSize + 8] = 0xDC  // first caplen 60 -> 1500
        bytes[Pcap.fileHeaderSize + 9] = 0x05
        let r = CaptureCheck.readAll(bytes)
        #expect(r.packets.isEmpty)
        #expect(r.stoppedEarly == "truncated record at offset 24: caplen 1500 but \(bytes.count - 40) bytes left")
        bytes[Pcap.fileHeaderSize + 11] = 0x7F  // absurd
        #expect(CaptureCheck.readAll(bytes).stoppedEarly?.hasPrefix("absurd caplen") == true)
    }

    /// Hand-made malformed pcapng blocks after a valid SHB, IDB and one packet.
    @Test func malformedPcapngBlocks() {
        let cases: [(String, (inout PcapngBuilder) -> Void, String)] = [
            ("length 0", { (b: inout PcapngBuilder) in b.block(6, [], length: 0, trailer: 0) }, "less than 12"),
            ("length 8", { (b: inout PcapngBuilder) in b.block(6, [], length: 8, trailer: 8) }, "less than 12"),
            ("length 13", { (b: inout PcapngBuilder) in b.block(6, [1, 2, 3, 4], length: 13) }, "not a multiple of 4"),
            ("length past the end", { (b: inout PcapngBuilder) in b.block(6, [1, 2, 3, 4], length: 4096) }, "truncated block"),
            ("trailer differs", { (b: inout PcapngBuilder) in b.block(6, [1, 2, 3, 4], trailer: 20) }, "trailing length"),
            ("EPB caplen past its block", { (b: inout PcapngBuilder) in b.epb(ifid: 0, ts: 1, data: [1, 2, 3, 4], caplen: 1000) }, "caplen 1000"),
            ("EPB caplen 2^32-1", { (b: inout PcapngBuilder) in b.epb(ifid: 0, ts: 1, data: [1, 2, 3, 4], caplen: .max) }, "caplen"),
            ("EPB body too short", { (b: inout PcapngBuilder) in b.block(6, [0, 0, 0, 0, 0, 0, 0, 0]) }, "too short"),
            ("PB body too short", { (b: inout PcapngBuilder) in b.block(2, [0, 0, 0, 0]) }, "too short"),
            ("SPB body too short", { (b: inout PcapngBuilder) in b.block(3, []) }, "too short"),
            ("interface out of range", { (b: inout PcapngBuilder) in b.epb(ifid: 1, ts: 1, data: [1]) }, "interface 1"),
            ("interface 2^32-1", { (b: inout PcapngBuilder) in b.epb(ifid: .max, ts: 1, data: [1]) }, "interface"),
            ("PB interface out of range", { (b: inout PcapngBuilder) in b.packetBlock(ifid: 7, ts: 1, data: [1]) }, "interface 7"),
            ("unknown byte order", { (b: inout PcapngBuilder) in b.shb(big: false, magic: 0xDEAD_BEEF) }, "byte-order magic"),
            ("SHB version 2", { (b: inout PcapngBuilder) in b.shb(big: true, major: 2) }, "unsupported version"),
            ("SHB too short", { (b: inout PcapngBuilder) in var w = b.body(); w.u32(0x1A2B_3C4D); b.block(0x0A0D_0D0A, w.out) }, "too short"),
            ("IDB too short", { (b: inout PcapngBuilder) in b.block(1, [1, 0, 0, 0]) }, "too short"),
            ("IDB option overruns", { (b: inout PcapngBuilder) in b.block(1, [1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 200, 0]) }, "overruns"),
            ("if_tsresol 10^-20", { (b: inout PcapngBuilder) in b.idb(link: 1, options: [(9, [20])]) }, "too fine"),
            ("if_tsresol 2^-64", { (b: inout PcapngBuilder) in b.idb(link: 1, options: [(9, [0x80 | 64])]) }, "too fine"),
            ("if_tsresol length 2", { (b: inout PcapngBuilder) in b.idb(link: 1, options: [(9, [6, 6])]) }, "if_tsresol"),
            ("if_tsoffset length 4", { (b: inout PcapngBuilder) in b.idb(link: 1, options: [(14, [1, 2, 3, 4])]) }, "if_tsoffset"),
            ("too many interfaces", { (b: inout PcapngBuilder) in for _ in 0...CaptureReader.maxInterfaces { b.idb(link: 1) } }, "more than 256"),
            ("SPB before any IDB", { (b: inout PcapngBuilder) in b.shb(big: false); b.spb(wire: 4, data: [1, 2, 3, 4]) }, "before any interface"),
            ("stray bytes at the end", { (b: inout PcapngBuilder) in b.w.bytes([0, 0, 0, 0, 0, 0]) }, "block at offset 96"),
        ]
        for (name, damage, message) in cases {
            var b = PcapngBuilder()
            b.shb(big: false)
            b.idb(link: 1)
            b.epb(ifid: 0, ts: 1, data: [9, 9, 9])
            damage(&b)
            b.epb(ifid: 0, ts: 2, data: [8, 8])  // never reached
            let r = CaptureCheck.readAll(b.bytes)
            #expect(r.error == nil)
            #expect(r.packets.map(\.data) == [[9, 9, 9]], "\(name)")
            #expect(r.stoppedEarly?.contains(message) == true, "\(name): \(r.stoppedEarly ?? "clean")")
        }
    }

    @Test func maxInterfacesIsAccepted() {
        var b = PcapngBuilder()
        b.shb(big: true)
        for i in 0..<CaptureReader.maxInterfaces { b.idb(link: UInt16(i)) }
        b.epb(ifid: 255, ts: 0, data: [1])
        let r = CaptureCheck.readAll(b.bytes)
        #expect(r.stoppedEarly == nil && r.packets.map(\.linkType) == [255])
    }

    @Test func randomGarbage() {
        var rng = SplitMix(state: 42)
        let heads: [[UInt8]] = [[0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0], [0xA1, 0xB2, 0x3C, 0x4D, 0, 2, 0, 4], [0x0A, 0x0D, 0x0D, 0x0A], []]
        for i in 0..<20_000 {
            var bytes = heads[i % heads.count]
            let n = Int.random(in: 0..<400, using: &rng)
            for _ in 0..<n { bytes.append(UInt8.random(in: 0...255, using: &rng)) }
            if i % 8 == 2, bytes.count >= 12 {  // a plausible SHB header to get past the magic
                bytes.replaceSubrange(8..<12, with: [0x4D, 0x3C, 0x2B, 0x1A])
            }
            _ = CaptureCheck.readAll(bytes)
        }
    }

    @Test func mutatedValidFiles() {
        var rng = SplitMix(state: 7)
        let seeds = [samplePcap().bytes, samplePcapng().bytes]
        for i in 0..<20_000 {
            var bytes = seeds[i % 2]
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[at] = Int.random(in: 0..<3, using: &rng) == 0 ? 0xFF : UInt8.random(in: 0...255, using: &rng)
            }
            if i % 5 == 0 { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &rng)) }
            _ = CaptureCheck.readAll(bytes)
        }
    }
}

// MARK: - Real traces, against tcpdump and tshark

/// The zeek-corpus folder: `$LB_CORPUS`, or `../shared/zeek-corpus` next to the repository.
private let corpusDirectory: URL = {
    if let env = ProcessInfo.processInfo.environment["LB_CORPUS"], !env.isEmpty {
        return URL(fileURLWithPath: env)
    }
    let repo = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return repo.appendingPathComponent("../shared/zeek-corpus").standardizedFileURL
}()

/// Every *.pcap and *.pcapng under the corpus's traces folder, as paths relative to it.
private func corpusTraces() -> [String] {
    let root = corpusDirectory.appendingPathComponent("traces")
    guard let e = FileManager.default.enumerator(atPath: root.path) else { return [] }
    return e.compactMap { $0 as? String }
        .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }
        .sorted()
}

/// Runs a tool, returning its standard output; records an issue if it fails.
private func runTool(_ path: String, _ args: [String]) throws -> String {
    let (status, out, err) = try ChildProcess.run(path, args)
    #expect(status == 0, "\(path) \(args.joined(separator: " ")) failed: \(err)")
    return out
}

/// "1300475167.096535000" -> nanoseconds.
private func parseEpoch(_ s: Substring) -> UInt64? {
    let parts = s.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 2, let sec = UInt64(parts[0]), parts[1].count == 9, let ns = UInt64(parts[1]) else { return nil }
    return sec * 1_000_000_000 + ns
}

@Suite struct CaptureCorpusTests {
    @Test func corpusIsPresent() {
        let traces = corpusTraces()
        #expect(!traces.isEmpty, "no *.pcap/*.pcapng under \(corpusDirectory.path)/traces; set LB_CORPUS to the zeek-corpus folder")
        #expect(traces.contains { $0.hasSuffix(".pcapng") } && traces.contains { $0.hasSuffix(".pcap") })
        for tool in ["/usr/bin/tcpdump", "/usr/bin/tshark"] {
            #expect(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is needed by the corpus tests")
        }
    }

    /// Packet count, every timestamp and every byte against `tcpdump --nano -xx`; every
    /// timestamp, captured and wire length (and pcapng interface) against tshark.
    @Test(arguments: corpusTraces())
    func traceMatchesTcpdumpAndTshark(trace: String) throws {
        let path = corpusDirectory.appendingPathComponent("traces").appendingPathComponent(trace).path
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        let r = file.withUnsafeBytes { CaptureCheck.readAll($0) }
        #expect(r.error == nil)
        #expect(r.stoppedEarly == nil)
        #expect(r.isPcapng == trace.hasSuffix(".pcapng"))
        #expect(!r.packets.isEmpty)

        // tcpdump: a line per packet starting with its time, then its bytes as hex lines.
        var dump: [(ts: UInt64, bytes: [UInt8])] = []
        let td = try runTool("/usr/bin/tcpdump", ["--nano", "-tt", "-nn", "-q", "-xx", "-r", path])
        for line in td.split(separator: "\n") {
            if line.hasPrefix("\t0x") {
                guard !dump.isEmpty, let colon = line.firstIndex(of: ":") else { continue }
                for word in line[line.index(after: colon)...].split(separator: " ") {
                    var w = word[...]
                    while w.count >= 2 {
                        dump[dump.count - 1].bytes.append(UInt8(w.prefix(2), radix: 16) ?? 0)
                        w = w.dropFirst(2)
                    }
                }
            } else if let ts = line.split(separator: " ", maxSplits: 1).first.flatMap(parseEpoch) {
                dump.append((ts, []))
            }
        }
        #expect(r.packets.count == dump.count, "packet count vs tcpdump")
        #expect(r.packets.first?.timestampNanos == dump.first?.ts, "first timestamp vs tcpdump")
        #expect(r.packets.last?.timestampNanos == dump.last?.ts, "last timestamp vs tcpdump")
        let tdMismatch = zip(r.packets, dump).enumerated().first { $1.0.timestampNanos != $1.1.ts || $1.0.data != $1.1.bytes }
        #expect(tdMismatch == nil, "packet \(tdMismatch.map { $0.offset + 1 } ?? 0) differs from tcpdump's")

        let ts = try runTool("/usr/bin/tshark", ["-n", "-r", path, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.cap_len", "-e", "frame.len", "-e", "frame.interface_id"])
        let rows = ts.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        #expect(r.packets.count == rows.count, "packet count vs tshark")
        for (i, (p, row)) in zip(r.packets, rows).enumerated() {
            guard row.count == 4 else { Issue.record("tshark row \(i + 1): \(row)"); break }
            let ok = parseEpoch(row[0]) == p.timestampNanos && Int(row[1]) == p.data.count && Int(row[2]) == p.wireLength
                && (row[3].isEmpty ? p.interface == 0 : Int(row[3]) == p.interface)
            if !ok {
                Issue.record("packet \(i + 1): tshark says \(row), reader says ts \(p.timestampNanos) caplen \(p.data.count) len \(p.wireLength) if \(p.interface)")
                break
            }
        }
    }
}

// MARK: - The link types of issue 15

@Suite struct CaptureReaderLinkTypeTests {
    /// PPP, PPP in HDLC framing, FDDI and NFLOG captures, classic and pcapng (one interface of
    /// each in one section), are read with their link type, which the decoder accepts.
    @Test func pppFDDIAndNFLOGCaptures() {
        let links: [(UInt32, LinkType)] = [(9, .ppp), (50, .pppHDLC), (10, .fddi), (239, .nflog)]
        for (value, link) in links {
            #expect(LinkType(linktype: value) == link)
            let pcap = Pcap.file(linkType: value, nanosecond: false, packets: [(1_000, payload(40, seed: 9))])
            let r = CaptureCheck.readAll(pcap)
            #expect(r.error == nil && r.packets.count == 1 && r.packets.first?.linkType == value)
        }
        var b = PcapngBuilder()
        b.shb(big: false)
        for (value, _) in links { b.idb(link: UInt16(value), snaplen: 65535) }
        for i in links.indices { b.epb(ifid: UInt32(i), ts: 1, data: payload(40, seed: UInt8(i))) }
        let r = CaptureCheck.readAll(b.bytes)
        #expect(r.error == nil && r.packets.map(\.linkType) == links.map(\.0))
    }
}
