// Link layers of serial lines and firewall logs: PPP (LINKTYPE_PPP 9, LINKTYPE_PPP_HDLC 50),
// NFLOG (239) and FDDI (10). Like the other non-Ethernet link layers they are converted: the
// network-layer payload is delivered behind a synthesized Ethernet header, and a frame with no
// Ethernet form (PPP LCP, FDDI SMT, ...) is delivered whole behind EtherType 0x88B5.

extension Walk {
    /// PPP: an optional address/control pair FF 03 (HDLC-like framing, RFC 1662), then a
    /// protocol field of two bytes, or one when compressed (RFC 1661: an odd first byte).
    /// 0x0021 IPv4, 0x0057 IPv6 and 0x0281 MPLS continue; LCP, IPCP, CCP ... are non-IP.
    /// LINKTYPE_PPP_HDLC frames that start 0F or 8F are Cisco HDLC: address, control, then an
    /// EtherType (IP and MPLS continue; SLARP keepalives and the rest are non-IP).
    mutating func pppLink(hdlc: Bool) -> Next {
        guard f.count >= 2 else { return fail(.truncatedLink) }
        let first = f.u8(0)
        if hdlc && (first == 0x0F || first == 0x8F) {
            guard f.count >= 4 else { return fail(.truncatedLink) }
            let t = f.be16(2)
            // IP and MPLS are converted; the rest (SLARP is 0x8035, not RARP) has no Ethernet form
            guard t == 0x0800 || t == 0x86DD || t == 0x8847 || t == 0x8848 else { return opaque() }
            off = 4
            setDelivery(start: 4, synth: t)
            return .etherType(t)
        }
        var p = 0
        if first == 0xFF && f.u8(1) == 0x03 { p = 2 }
        guard f.count - p >= 1 else { return fail(.truncatedLink) }
        let proto: UInt16
        if f.u8(p) & 1 == 1 {
            proto = UInt16(f.u8(p))
            p += 1
        } else {
            guard f.count - p >= 2 else { return fail(.truncatedLink) }
            proto = f.be16(p)
            p += 2
        }
        off = p
        switch proto {
        case 0x0021:
            setDelivery(start: p, synth: 0x0800)
            return .ipv4
        case 0x0057:
            setDelivery(start: p, synth: 0x86DD)
            return .ipv6
        case 0x0281:
            setDelivery(start: p, synth: 0x8847)
            return mpls()
        default:
            return opaque()
        }
    }

    /// NFLOG (Linux netfilter log): family, version 0 and a resource id, then TLVs whose
    /// length and type are in the capturing host's order; each TLV's length counts its 4-byte
    /// header, and TLVs are padded to 4 bytes. The payload TLV (type 9) holds the packet, an IP
    /// packet for the families AF_INET (2) and AF_INET6 (10). Little-endian hosts write almost
    /// every capture; libpcap swaps the TLVs of a big-endian host's file, and so does lb: TLV
    /// types are below 256, so the first TLV's type says the order.
    mutating func nflog() -> Next {
        guard f.count >= 4 else { return fail(.truncatedLink) }
        let family = f.u8(0)
        guard f.u8(1) == 0 else { return opaque(error: .nflogBadHeader) }
        var p = 4
        var tlvs = 0
        let big = end - p >= 4 && f.le16(p + 2) > 0xFF
        while true {
            if p == end { return opaque(error: .nflogNoPayload) }
            guard end - p >= 4 else { return opaque(error: .truncatedLink) }
            tlvs += 1
            guard tlvs <= 64 else { return opaque(error: .nflogBadHeader) }
            let len = Int(big ? f.be16(p) : f.le16(p))
            let type = big ? f.be16(p + 2) : f.le16(p + 2)
            guard len >= 4 else { return opaque(error: .nflogBadHeader) }
            if type == 9 {
                // the packet may have been cut by the capture's snaplen: it ends at the end
                if end - p > len { end = p + len }
                p += 4
                break
            }
            let padded = (len + 3) & ~3
            guard end - p >= padded else { return opaque(error: .truncatedLink) }
            p += padded
        }
        guard family == 2 || family == 10 else { return opaque() }
        off = p
        setDelivery(start: p, end: end, synth: end - p >= 1 && f.u8(p) >> 4 == 6 ? 0x86DD : 0x0800)
        return .ip
    }

    /// FDDI: frame control, destination and source, then (for LLC frames) 802.2 LLC. SNAP
    /// with an EtherType continues; SMT and MAC frames and other LLC are non-IP.
    mutating func fddi() -> Next {
        guard f.count >= 13 else { return fail(.truncatedLink) }
        setLinkKey(dst: 1, src: 7)
        guard f.u8(0) & 0x30 == 0x10 else { return opaque() }    // FF bits 01: an LLC frame
        switch snap(13) {
        case .etherType(let t, let payload):
            setDelivery(start: payload, synth: t, dst: 1, src: 7)
            off = payload
            return .etherType(t)
        case .truncated: return opaque(error: .truncatedLink)
        case .other: return opaque()
        }
    }

    /// A frame with no Ethernet form: delivered whole behind EtherType 0x88B5, non-IP.
    mutating func opaque(error: ParseError = .none) -> Next {
        d.nonIP = true
        setDelivery(start: 0, synth: opaqueEtherType)
        if error != .none { d.error = error }
        return .done
    }
}
