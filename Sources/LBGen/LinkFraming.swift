// Re-frames Ethernet frames (as TrafficSynth makes them) on another link layer, or inside a
// layer-2 encapsulation, for `lb gen --link` and `--encap`: the same IP packets, so the same
// flows, on the wire of a PPP line, an NFLOG capture, an FDDI ring, a PBB or FabricPath core.

/// A link layer for a whole capture file (its LINKTYPE_) other than Ethernet.
public enum LinkFraming: String, Sendable, CaseIterable {
    /// LINKTYPE_PPP (9): FF 03 and a PPP protocol field
    case ppp
    /// LINKTYPE_PPP_HDLC (50): the same bytes
    case pppHDLC = "ppp-hdlc"
    /// LINKTYPE_NFLOG (239): NFLOG header and TLVs, the packet in the payload TLV
    case nflog
    /// LINKTYPE_FDDI (10): frame control, addresses, LLC/SNAP
    case fddi

    public var linkType: UInt32 {
        switch self {
        case .ppp: 9
        case .pppHDLC: 50
        case .nflog: 239
        case .fddi: 10
        }
    }

    /// The frame on this link layer, or nil when the Ethernet frame carries neither IPv4 nor
    /// IPv6 directly (no VLAN tags: TrafficSynth makes none).
    public func frame(fromEthernet e: [UInt8]) -> [UInt8]? {
        guard e.count >= 14 else { return nil }
        let type = UInt16(e[12]) << 8 | UInt16(e[13])
        guard type == 0x0800 || type == 0x86DD else { return nil }
        let ip = Layer.ip(Array(e[14...]))
        let dst = MAC(bytes: e[0..<6]), src = MAC(bytes: e[6..<12])
        switch self {
        case .ppp, .pppHDLC: return PacketBuilder.build(.ppp(), ip)
        case .nflog: return PacketBuilder.build(.nflog(), ip)
        case .fddi: return PacketBuilder.build(.fddi(dst: dst, src: src), .llcSnap(), ip)
        }
    }
}

extension MAC {
    /// The address in six bytes (first byte most significant).
    init(bytes: ArraySlice<UInt8>) {
        self.init(bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }
}

/// A layer-2 encapsulation of Ethernet frames.
public enum EthernetEncap: String, Sendable, CaseIterable {
    /// 802.1ah: backbone addresses, a backbone VLAN tag (0x88A8), the I-TAG, the frame
    case pbb
    /// Cisco FabricPath: the 16-byte header, the frame
    case fabricPath = "fabricpath"
    /// 802.3 with LLC/SNAP instead of Ethernet II (frames whose data would be longer than
    /// 802.3's 1500 bytes stay Ethernet II)
    case llcSnap = "llc-snap"

    public func frame(_ e: [UInt8], isid: UInt32 = 0x10000) -> [UInt8] {
        guard e.count >= 14 else { return e }
        switch self {
        case .pbb:
            return PacketBuilder.build(.ethernet(dst: "02:bb:00:00:00:02", src: "02:bb:00:00:00:01"),
                                       .vlan(id: 100, tpid: 0x88A8), .pbb(isid: isid), .payload(e))
        case .fabricPath:
            return PacketBuilder.build(.fabricPath(), .payload(e))
        case .llcSnap:
            let type = UInt16(e[12]) << 8 | UInt16(e[13])
            guard e.count - 14 + 8 <= 1500 else { return e }
            return PacketBuilder.build(.ieee8023(dst: MAC(bytes: e[0..<6]), src: MAC(bytes: e[6..<12])), .llcSnap(type: type), .payload(Array(e[14...])))
        }
    }
}
