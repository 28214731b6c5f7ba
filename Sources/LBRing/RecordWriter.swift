import CLBRing
import LBCore

/// One record lb has reserved in a lane: its descriptor, and its bytes (the tunnel info when
/// there is one, then the packet). The only way lb writes into a ring: the descriptor and the
/// tunnel info are written field by field through the C structs of lb_ring.h (whose offsets
/// lb_ring.h asserts and LBRingTests' LayoutTests check on the Swift side), never at offsets
/// written out by hand. A plain value of pointers into memory the `RingMemory` owns.
public struct RecordWriter {
    @usableFromInline let desc: UnsafeMutablePointer<lb_desc>
    @usableFromInline let record: UnsafeMutableRawPointer
    /// the record's offset in the lane's byte area
    @usableFromInline let offset: UInt64

    @inlinable @inline(__always)
    init(desc: UnsafeMutablePointer<lb_desc>, record: UnsafeMutableRawPointer, offset: UInt64) {
        self.desc = desc; self.record = record; self.offset = offset
    }

    /// Where the packet's bytes go: after `tunnelLength` bytes of tunnel info (0 or 64).
    /// (Tests only: lb writes through the methods below.)
    func packet(tunnelLength: Int) -> UnsafeMutableRawPointer { record + tunnelLength }

    /// The outer flow of the outermost tunnel, as struct lb_tunnel_info at the record's start.
    @inlinable @inline(__always)
    public func writeTunnelInfo(_ outer: UnsafePointer<TunnelEndpoints>, encap: UInt8, vni: UInt32) {
        let o = outer.pointee
        let t = record.bindMemory(to: lb_tunnel_info.self, capacity: 1)
        record.initializeMemory(as: UInt64.self, repeating: 0, count: MemoryLayout<lb_tunnel_info>.size / 8)
        t.pointee.family = o.isIPv6 ? 6 : 4
        t.pointee.proto = o.proto
        t.pointee.encap = encap
        t.pointee.sport = o.sport
        t.pointee.dport = o.dport
        t.pointee.vni = vni
        // addresses in network byte order: the high word first
        let src = record + MemoryLayout<lb_tunnel_info>.offset(of: \.src)!
        let dst = record + MemoryLayout<lb_tunnel_info>.offset(of: \.dst)!
        if o.isIPv6 {
            src.storeBytes(of: o.srcHi.bigEndian, as: UInt64.self)
            (src + 8).storeBytes(of: o.srcLo.bigEndian, as: UInt64.self)
            dst.storeBytes(of: o.dstHi.bigEndian, as: UInt64.self)
            (dst + 8).storeBytes(of: o.dstLo.bigEndian, as: UInt64.self)
        } else {
            src.storeBytes(of: UInt32(truncatingIfNeeded: o.srcLo).bigEndian, as: UInt32.self)
            dst.storeBytes(of: UInt32(truncatingIfNeeded: o.dstLo).bigEndian, as: UInt32.self)
        }
    }

    /// Fills the descriptor (field by field: no temporary on the stack, no memcpy). Visible to
    /// the consumer once the lane commits and publishes.
    @inlinable @inline(__always)
    public func describe(ts: UInt64, caplen: Int, wirelen: UInt32, hash: UInt64, flags: UInt32, l3: UInt16, encap: UInt8,
                         depth: UInt8, vni: UInt32, vlan: UInt16, tunnelLength: Int, input: UInt32) {
        desc.pointee.ts_ns = ts
        desc.pointee.data_off = offset &+ UInt64(truncatingIfNeeded: tunnelLength)
        desc.pointee.caplen = UInt32(truncatingIfNeeded: caplen)
        desc.pointee.wirelen = wirelen
        desc.pointee.flow_hash = hash
        desc.pointee.flags = flags
        desc.pointee.l3_off = l3
        desc.pointee.encap = encap
        desc.pointee.depth = depth
        desc.pointee.vni = vni
        desc.pointee.vlan = vlan
        desc.pointee.tunnel_len = UInt16(truncatingIfNeeded: tunnelLength)
        desc.pointee.input = input
        desc.pointee.reserved = (0, 0, 0)
    }

    /// Fills the descriptor with a copy of `template` (built in lb's own memory with
    /// `lb_desc(ts:...)`), pointing at this record: one 64-byte copy, then `data_off`.
    @inlinable @inline(__always)
    public func describe(copying template: UnsafePointer<lb_desc>) {
        desc.pointee = template.pointee
        desc.pointee.data_off = offset &+ UInt64(truncatingIfNeeded: template.pointee.tunnel_len)
    }

    /// Copies `count` packet bytes to `at` bytes into the record (after the tunnel info, and
    /// after a synthesized Ethernet header if there is one); the caller copies no more than
    /// the caplen it reserved.
    @inlinable @inline(__always)
    public func writePacket(from src: UnsafeRawPointer, count: Int, at: Int) {
        copyPacketBytes(to: record + at, from: src, count: count)
    }

    /// Writes the 14-byte Ethernet header the decoder asked for (EtherType `type`, the MACs
    /// at offsets `dst` and `src` of `frame`, -1: zeros) where the packet starts, after
    /// `tunnelLength` bytes of tunnel info.
    @inlinable @inline(__always)
    public func writeEthernetHeader(type: UInt16, dst: Int, src: Int, from frame: UnsafeRawBufferPointer, tunnelLength: Int) {
        EthernetHeader.write(to: record + tunnelLength, frame: frame, type: type, dst: dst, src: src)
    }
}

extension lb_desc {
    /// A descriptor built in lb's own memory, for `RecordWriter.describe(copying:)`, which
    /// sets `data_off` when it copies it into a record.
    @inlinable @inline(__always)
    public init(ts: UInt64, caplen: Int, wirelen: UInt32, hash: UInt64, flags: UInt32, l3: UInt16, encap: UInt8, depth: UInt8,
                vni: UInt32, vlan: UInt16, tunnelLength: Int, input: UInt32) {
        self.init(ts_ns: ts, data_off: 0, caplen: UInt32(truncatingIfNeeded: caplen), wirelen: wirelen, flow_hash: hash,
                  flags: flags, l3_off: l3, encap: encap, depth: depth, vni: vni, vlan: vlan,
                  tunnel_len: UInt16(truncatingIfNeeded: tunnelLength), input: input, reserved: (0, 0, 0))
    }
}

extension LaneProducer {
    /// Room for a record of `bytes` (tunnel info included), or nil when the ring is full. On
    /// success the caller writes it through the `RecordWriter`, then calls `commit`.
    @inlinable @inline(__always)
    public mutating func reserveRecord(bytes: Int) -> RecordWriter? {
        guard let (desc, offset) = reserve(bytes: bytes) else { return nil }
        return RecordWriter(desc: desc, record: data + Int(truncatingIfNeeded: offset), offset: offset)
    }
}
