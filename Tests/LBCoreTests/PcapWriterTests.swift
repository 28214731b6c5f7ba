import Testing

@testable import LBCore

@Suite struct PcapWriterTests {
    @Test func fileHeaderBytes() {
        var h = [UInt8](repeating: 0xEE, count: Pcap.fileHeaderSize)
        h.withUnsafeMutableBytes { Pcap.writeFileHeader(to: $0.baseAddress!, linkType: 1, snaplen: 65535, nanosecond: false) }
        #if _endian(little)
        #expect(h == [0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 1, 0, 0, 0])
        #endif
        h.withUnsafeMutableBytes { Pcap.writeFileHeader(to: $0.baseAddress!, linkType: 113, snaplen: 262_144, nanosecond: true) }
        #if _endian(little)
        #expect(h == [0x4D, 0x3C, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 113, 0, 0, 0])
        #endif
    }

    @Test func recordHeaderBytes() {
        // Written at an odd offset: the stores must not assume alignment.
        var r = [UInt8](repeating: 0xEE, count: Pcap.recordHeaderSize + 1)
        let t: UInt64 = 1_700_000_000_123_456_789
        r.withUnsafeMutableBytes { Pcap.writeRecordHeader(to: $0.baseAddress! + 1, timestampNanos: t, caplen: 60, wirelen: 1514, nanosecond: false) }
        #if _endian(little)
        #expect(r == [0xEE, 0x00, 0xF1, 0x53, 0x65, 0x40, 0xE2, 0x01, 0x00, 60, 0, 0, 0, 0xEA, 0x05, 0, 0])
        #endif
        r.withUnsafeMutableBytes { Pcap.writeRecordHeader(to: $0.baseAddress! + 1, timestampNanos: t, caplen: 60, wirelen: 1514, nanosecond: true) }
        #if _endian(little)
        #expect(Array(r[5..<9]) == [0x15, 0xCD, 0x5B, 0x07])  // 123456789
        #endif
    }

    @Test(arguments: [false, true])
    func roundTrip(nanosecond: Bool) throws {
        let packets: [(timestampNanos: UInt64, bytes: [UInt8])] = [
            (1_700_000_000_123_456_789, (0..<60).map { UInt8($0) }),
            (1_700_000_000_123_456_999, []),
            (1_700_000_001_000_000_001, [UInt8](repeating: 0xAB, count: 1514)),
            (0, [1]),
            (4_294_967_295_999_999_999, (0..<9000).map { UInt8(truncatingIfNeeded: $0 * 7) }),
        ]
        let file = Pcap.file(linkType: 101, nanosecond: nanosecond, packets: packets)
        #expect(file.count == Pcap.fileHeaderSize + packets.reduce(0) { $0 + Pcap.recordHeaderSize + $1.bytes.count })
        let r = CaptureCheck.readAll(file)
        #expect(r.error == nil && r.stoppedEarly == nil && !r.isPcapng)
        #expect(r.packets.map(\.data) == packets.map(\.bytes))
        let expected = packets.map { nanosecond ? $0.timestampNanos : $0.timestampNanos / 1000 * 1000 }
        #expect(r.packets.map(\.timestampNanos) == expected)
        #expect(r.packets.map(\.wireLength) == packets.map(\.bytes.count))
        #expect(r.packets.allSatisfy { $0.linkType == 101 && $0.interface == 0 })
        #expect(file.withUnsafeBytes { try? CaptureReader($0).snaplen } == Pcap.defaultSnaplen)
    }

    @Test func headersWrittenInPlaceReadBack() throws {
        // What `lb cat` does: headers into its own buffer, then the packet bytes.
        var buf = [UInt8](repeating: 0, count: Pcap.fileHeaderSize + Pcap.recordHeaderSize + 4)
        buf.withUnsafeMutableBytes { b in
            Pcap.writeFileHeader(to: b.baseAddress!, linkType: 1, snaplen: 2, nanosecond: true)
            Pcap.writeRecordHeader(to: b.baseAddress! + Pcap.fileHeaderSize, timestampNanos: 5, caplen: 4, wirelen: 100, nanosecond: true)
        }
        buf.replaceSubrange(40..<44, with: [1, 2, 3, 4])
        let r = CaptureCheck.readAll(buf)
        #expect(r.packets == [CaptureCheck.Packet(data: [1, 2, 3, 4], timestampNanos: 5, wireLength: 100, linkType: 1, interface: 0)])
        #expect(r.stoppedEarly == nil)
    }
}
