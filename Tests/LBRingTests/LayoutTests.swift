import CLBRing
import LBCore
@testable import LBRing
import Testing

/// The ring ABI seen from Swift: the C structs lb_ring.h declares (and asserts with
/// _Static_assert) have the offsets docs/ring-protocol.md documents, and lb's writer puts each
/// field where a C consumer reads it.
@Suite struct LayoutTests {
    @Test func descriptorAndTunnelInfoOffsets() {
        #expect(MemoryLayout<lb_desc>.size == 64)
        let d: [(PartialKeyPath<lb_desc>, Int)] = [(\.ts_ns, 0), (\.data_off, 8), (\.caplen, 16), (\.wirelen, 20), (\.flow_hash, 24),
                                                    (\.flags, 32), (\.l3_off, 36), (\.encap, 38), (\.depth, 39), (\.vni, 40),
                                                    (\.vlan, 44), (\.tunnel_len, 46), (\.input, 48), (\.reserved, 52)]
        for (k, off) in d { #expect(MemoryLayout<lb_desc>.offset(of: k) == off, "\(k)") }
        #expect(MemoryLayout<lb_tunnel_info>.size == 64)
        let t: [(PartialKeyPath<lb_tunnel_info>, Int)] = [(\.family, 0), (\.proto, 1), (\.encap, 2), (\.sport, 4), (\.dport, 6),
                                                           (\.src, 8), (\.dst, 24), (\.vni, 40), (\.reserved, 44)]
        for (k, off) in t { #expect(MemoryLayout<lb_tunnel_info>.offset(of: k) == off, "\(k)") }
        #expect(MemoryLayout<lb_lane_header>.size == 128 && MemoryLayout<lb_lane_header>.offset(of: \.dropped) == 64)
        #expect(MemoryLayout<lb_lane_header>.offset(of: \.head) == 0 && MemoryLayout<lb_lane_header>.offset(of: \.reclaim) == 8)
        #expect(MemoryLayout<lb_lane_control>.size == 128 && MemoryLayout<lb_lane_control>.offset(of: \.tail) == 0)
        #expect(MemoryLayout<lb_lane_control>.offset(of: \.consumer_waiting) == 8)
        #expect(MemoryLayout<lb_lane_control>.offset(of: \.producer_waiting) == 64)
        let r: [(PartialKeyPath<lb_consumer_report>, Int)] = [(\.pid, 0), (\.heartbeat_ns, 8), (\.packets_processed, 16),
                                                               (\.loss_gaps, 24), (\.loss_acks, 32)]
        for (k, off) in r { #expect(MemoryLayout<lb_consumer_report>.offset(of: k) == off, "\(k)") }
        #expect(MemoryLayout<lb_consumer_report>.size == 64)
    }

    /// What RecordWriter writes, read back byte by byte at the documented offsets.
    @Test func writerPutsEveryFieldWhereCReadsIt() {
        let desc = UnsafeMutablePointer<lb_desc>.allocate(capacity: 1)
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 64)
        defer { desc.deallocate(); bytes.deallocate() }
        bytes.initializeMemory(as: UInt8.self, repeating: 0xEE, count: 256)
        let w = RecordWriter(desc: desc, record: bytes, offset: 4096)
        var outer = TunnelEndpoints()
        outer.isIPv6 = false; outer.proto = 17; outer.sport = 54321; outer.dport = 4789
        outer.srcLo = 0x0A00_0001; outer.dstLo = 0xC0A8_0102
        withUnsafePointer(to: &outer) { w.writeTunnelInfo($0, encap: 1, vni: 0x123456) }
        w.describe(ts: 7, caplen: 100, wirelen: 120, hash: 0xABCD, flags: 0x40, l3: 14, encap: 1, depth: 2, vni: 0x123456,
                   vlan: 10, tunnelLength: 64, input: 3)
        let r = UnsafeRawPointer(bytes)
        #expect(r.load(as: UInt8.self) == 4 && r.load(fromByteOffset: 1, as: UInt8.self) == 17 && r.load(fromByteOffset: 2, as: UInt8.self) == 1)
        #expect(r.load(fromByteOffset: 4, as: UInt16.self) == 54321 && r.load(fromByteOffset: 6, as: UInt16.self) == 4789)
        #expect(Array(UnsafeRawBufferPointer(start: r + 8, count: 4)) == [10, 0, 0, 1])
        #expect(Array(UnsafeRawBufferPointer(start: r + 24, count: 4)) == [192, 168, 1, 2])
        #expect(r.load(fromByteOffset: 40, as: UInt32.self) == 0x123456)
        #expect(Array(UnsafeRawBufferPointer(start: r + 44, count: 20)).allSatisfy { $0 == 0 }, "reserved bytes cleared")
        #expect(r.load(fromByteOffset: 64, as: UInt8.self) == 0xEE, "nothing written past the tunnel info")
        #expect(w.packet(tunnelLength: 64) == bytes + 64)
        let dr = UnsafeRawPointer(desc)
        #expect(dr.load(fromByteOffset: 8, as: UInt64.self) == 4096 + 64)
        #expect(dr.load(fromByteOffset: 16, as: UInt32.self) == 100 && dr.load(fromByteOffset: 20, as: UInt32.self) == 120)
        #expect(dr.load(fromByteOffset: 38, as: UInt8.self) == 1 && dr.load(fromByteOffset: 39, as: UInt8.self) == 2)
        #expect(dr.load(fromByteOffset: 44, as: UInt16.self) == 10 && dr.load(fromByteOffset: 46, as: UInt16.self) == 64)
        #expect(dr.load(fromByteOffset: 48, as: UInt32.self) == 3)
    }

    /// The data path's way: a descriptor built in lb's memory (lb_desc(ts:...)) and copied into
    /// the record, which points it at its bytes; the packet and a synthesized Ethernet header
    /// go where the descriptor says.
    @Test func templateCopyPacketAndEthernetHeader() {
        let desc = UnsafeMutablePointer<lb_desc>.allocate(capacity: 1)
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 64)
        defer { desc.deallocate(); bytes.deallocate() }
        desc.initialize(to: lb_desc())
        withUnsafeMutableBytes(of: &desc.pointee) { $0.initializeMemory(as: UInt8.self, repeating: 0xEE) }
        bytes.initializeMemory(as: UInt8.self, repeating: 0xEE, count: 256)
        var template = lb_desc(ts: 7, caplen: 100, wirelen: 120, hash: 0xABCD, flags: 0x40, l3: 14, encap: 1, depth: 2,
                               vni: 0x123456, vlan: 10, tunnelLength: 64, input: 3)
        let w = RecordWriter(desc: desc, record: bytes, offset: 4096)
        withUnsafePointer(to: &template) { w.describe(copying: $0) }
        let dr = UnsafeRawPointer(desc)
        #expect(dr.load(as: UInt64.self) == 7)
        #expect(dr.load(fromByteOffset: 8, as: UInt64.self) == 4096 + 64, "data_off: the record's offset after the tunnel info")
        #expect(dr.load(fromByteOffset: 16, as: UInt32.self) == 100 && dr.load(fromByteOffset: 20, as: UInt32.self) == 120)
        #expect(dr.load(fromByteOffset: 24, as: UInt64.self) == 0xABCD && dr.load(fromByteOffset: 32, as: UInt32.self) == 0x40)
        #expect(dr.load(fromByteOffset: 36, as: UInt16.self) == 14)
        #expect(dr.load(fromByteOffset: 38, as: UInt8.self) == 1 && dr.load(fromByteOffset: 39, as: UInt8.self) == 2)
        #expect(dr.load(fromByteOffset: 40, as: UInt32.self) == 0x123456)
        #expect(dr.load(fromByteOffset: 44, as: UInt16.self) == 10 && dr.load(fromByteOffset: 46, as: UInt16.self) == 64)
        #expect(dr.load(fromByteOffset: 48, as: UInt32.self) == 3)
        #expect(Array(UnsafeRawBufferPointer(start: dr + 52, count: 12)).allSatisfy { $0 == 0 }, "reserved bytes cleared")

        let frame: [UInt8] = Array(0..<100)
        frame.withUnsafeBytes { f in
            w.writeEthernetHeader(type: 0x0800, dst: 0, src: -1, from: f, tunnelLength: 64)
            w.writePacket(from: f.baseAddress! + 20, count: 80, at: 64 + 14)
        }
        let r = UnsafeRawPointer(bytes)
        #expect(Array(UnsafeRawBufferPointer(start: r + 64, count: 14)) == [0, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0x08, 0x00])
        #expect(Array(UnsafeRawBufferPointer(start: r + 78, count: 80)) == Array(20..<100))
        #expect(r.load(fromByteOffset: 158, as: UInt8.self) == 0xEE && r.load(fromByteOffset: 63, as: UInt8.self) == 0xEE,
                "nothing written outside the header and the packet")
    }
}
