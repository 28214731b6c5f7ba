// Tunnels: GRE (with ERSPAN, PPTP, Aruba), and the UDP tunnels VXLAN, GENEVE, GTP-U, Teredo,
// AYIYA and GRE-in-UDP. A tunnel header that fails validation is not removed: the packet is
// delivered as its outer flow and counted under the reason.

extension Walk {
    mutating func gre(kind: EncapKind, outerProto: UInt8, sport: UInt16, dport: UInt16) -> Next {
        guard end - off >= 4 else { return fail(.greTruncated) }
        let flags = f.be16(off)
        let proto = f.be16(off + 2)
        switch flags & 7 {
        case 0: break
        case 1: return pptp(flags: flags, proto: proto)
        default: return fail(.greBadVersion)
        }
        guard flags & 0x4000 == 0 else { return fail(.greRouting) }
        var h = 4
        if flags & 0x8000 != 0 { h += 4 }            // checksum + reserved
        var key: UInt32? = nil
        if flags & 0x2000 != 0 {
            guard end - off >= h + 4 else { return fail(.greTruncated) }
            key = f.be32(off + h)
            h += 4
        }
        let hasSequence = flags & 0x1000 != 0
        if hasSequence { h += 4 }
        guard end - off >= h else { return fail(.greTruncated) }
        let inner = off + h

        switch proto {
        case 0x0800, 0x86DD:
            let synth: UInt16 = proto
            guard enterTunnel(kind, innerStart: inner, innerEnd: end, synth: synth, outerProto: outerProto,
                              sport: sport, dport: dport, id: key) else { return .done }
            return proto == 0x0800 ? .ipv4 : .ipv6
        case 0x6558:                                  // transparent Ethernet bridging
            guard enterTunnel(kind, innerStart: inner, innerEnd: end, synth: 0, outerProto: outerProto,
                              sport: sport, dport: dport, id: key) else { return .done }
            return .ethernet
        case 0x8847, 0x8848:                          // MPLS: delivered behind an MPLS EtherType
            guard enterTunnel(kind, innerStart: inner, innerEnd: end, synth: proto, outerProto: outerProto,
                              sport: sport, dport: dport, id: key) else { return .done }
            return .etherType(proto)
        case 0x88BE:
            // ERSPAN type II has the GRE sequence bit and an 8-byte header; type I has neither.
            var start = inner
            var session = key
            if hasSequence {
                guard end - inner >= 8, f.u8(inner) >> 4 == 1 else { return fail(.erspanBadHeader) }
                session = UInt32(f.be16(inner + 2) & 0x03FF)
                start = inner + 8
            }
            guard enterTunnel(.erspan, innerStart: start, innerEnd: end, synth: 0, outerProto: outerProto,
                              sport: sport, dport: dport, id: session) else { return .done }
            return .ethernet
        case 0x22EB:
            // ERSPAN type III: 12-byte header, 8 more with the platform sub-header (O bit).
            // Bytes 10-11: P(1) FT(5) HwID(6) D(1) Gra(2) O(1).
            guard end - inner >= 12, f.u8(inner) >> 4 == 2 else { return fail(.erspanBadHeader) }
            let hlen = 12 + (f.u8(inner + 11) & 1 != 0 ? 8 : 0)
            guard end - inner >= hlen else { return fail(.erspanBadHeader) }
            let frameType = (f.u8(inner + 10) >> 2) & 0x1F
            let session = UInt32(f.be16(inner + 2) & 0x03FF)
            let start = inner + hlen
            switch frameType {
            case 0:
                guard enterTunnel(.erspan, innerStart: start, innerEnd: end, synth: 0, outerProto: outerProto,
                                  sport: sport, dport: dport, id: session) else { return .done }
                return .ethernet
            case 2:
                guard end - start >= 1 else { return fail(.erspanBadHeader) }
                let synth: UInt16 = f.u8(start) >> 4 == 6 ? 0x86DD : 0x0800
                guard enterTunnel(.erspan, innerStart: start, innerEnd: end, synth: synth, outerProto: outerProto,
                                  sport: sport, dport: dport, id: session) else { return .done }
                return .ip
            default:
                return fail(.erspanBadHeader)
            }
        default:
            if proto & 0xFF0F == 0x8200 || proto & 0xFF0F == 0x8300 {   // Aruba: 802.11 inside
                guard enterTunnel(.aruba, innerStart: inner, innerEnd: end, synth: 0, outerProto: outerProto,
                                  sport: sport, dport: dport, id: key) else { return .done }
                return .wifi
            }
            return fail(.greUnknownProtocol)
        }
    }

    /// PPTP's enhanced GRE (version 1): key (payload length + call id) always, sequence and
    /// acknowledgment optional, PPP inside.
    mutating func pptp(flags: UInt16, proto: UInt16) -> Next {
        guard proto == 0x880B, flags & 0x2000 != 0 else { return fail(.greBadVersion) }
        var h = 8
        if flags & 0x1000 != 0 { h += 4 }
        if flags & 0x0080 != 0 { h += 4 }
        guard end - off >= h else { return fail(.greTruncated) }
        let callID = UInt32(f.be16(off + 6))
        var p = off + h
        guard end > p else { return .done }            // acknowledgment only: no payload
        if end - p >= 2 && f.u8(p) == 0xFF && f.u8(p + 1) == 0x03 { p += 2 }
        guard end - p >= 1 else { return fail(.greTruncated) }
        var pppProto: UInt16
        if f.u8(p) & 1 == 1 {                          // compressed, one-byte protocol field
            pppProto = UInt16(f.u8(p))
            p += 1
        } else {
            guard end - p >= 2 else { return fail(.greTruncated) }
            pppProto = f.be16(p)
            p += 2
        }
        let synth: UInt16
        switch pppProto {
        case 0x0021: synth = 0x0800
        case 0x0057: synth = 0x86DD
        default: return .done                          // LCP, CCP, ...: PPP control traffic
        }
        guard enterTunnel(.pptp, innerStart: p, innerEnd: end, synth: synth, outerProto: 47, id: callID) else {
            return .done
        }
        return synth == 0x0800 ? .ipv4 : .ipv6
    }

    mutating func udpTunnel(_ kind: EncapKind, sport: UInt16, dport: UInt16, payload p: Int, payloadEnd pe: Int) -> Next {
        switch kind {
        case .vxlan:
            guard pe - p >= 8 else { return fail(.vxlanTruncated) }
            guard f.u8(p) & 0x08 != 0 else { return fail(.vxlanBadFlags) }
            let vni = f.be32(p + 4) >> 8
            guard enterTunnel(.vxlan, innerStart: p + 8, innerEnd: pe, synth: 0, outerProto: 17,
                              sport: sport, dport: dport, id: vni) else { return .done }
            return .ethernet
        case .geneve:
            return geneve(sport: sport, dport: dport, payload: p, payloadEnd: pe)
        case .gtpu:
            return gtpu(sport: sport, dport: dport, payload: p, payloadEnd: pe)
        case .teredo:
            return teredo(sport: sport, dport: dport, payload: p, payloadEnd: pe)
        case .ayiya:
            return ayiya(sport: sport, dport: dport, payload: p, payloadEnd: pe)
        case .greUDP:
            off = p
            end = pe
            return gre(kind: .greUDP, outerProto: 17, sport: sport, dport: dport)
        default:
            return .done
        }
    }

    mutating func geneve(sport: UInt16, dport: UInt16, payload p: Int, payloadEnd pe: Int) -> Next {
        guard pe - p >= 8 else { return fail(.geneveTruncated) }
        let b0 = f.u8(p)
        guard b0 >> 6 == 0 else { return fail(.geneveBadVersion) }
        let optLen = Int(b0 & 0x3F) &* 4
        guard pe - p >= 8 + optLen else { return fail(.geneveBadOptions) }
        // Every option must lie inside the option area, and they must fill it exactly.
        var o = p + 8
        let optEnd = o + optLen
        while o < optEnd {
            guard optEnd - o >= 4 else { return fail(.geneveBadOptions) }
            o += 4 + Int(f.u8(o + 3) & 0x1F) &* 4
        }
        guard o == optEnd else { return fail(.geneveBadOptions) }
        let proto = f.be16(p + 2)
        let vni = f.be32(p + 4) >> 8
        let inner = optEnd
        switch proto {
        case 0x6558:
            guard enterTunnel(.geneve, innerStart: inner, innerEnd: pe, synth: 0, outerProto: 17,
                              sport: sport, dport: dport, id: vni) else { return .done }
            return .ethernet
        case 0x0800, 0x86DD:
            guard enterTunnel(.geneve, innerStart: inner, innerEnd: pe, synth: proto, outerProto: 17,
                              sport: sport, dport: dport, id: vni) else { return .done }
            return proto == 0x0800 ? .ipv4 : .ipv6
        default:
            return fail(.geneveBadProtocol)
        }
    }

    mutating func gtpu(sport: UInt16, dport: UInt16, payload p: Int, payloadEnd pe0: Int) -> Next {
        guard pe0 - p >= 8 else { return fail(.gtpBadHeader) }
        let flags = f.u8(p)
        guard flags >> 5 == 1, flags & 0x10 != 0 else { return fail(.gtpBadHeader) }
        let messageType = f.u8(p + 1)
        let length = Int(f.be16(p + 2))
        let teid = f.be32(p + 4)
        let pe = p + 8 + length < pe0 ? p + 8 + length : pe0
        var h = 8
        if flags & 0x07 != 0 {                         // sequence, N-PDU, next extension type
            guard pe - p >= 12 else { return fail(.gtpBadHeader) }
            var next = f.u8(p + 11)
            h = 12
            var count = 0
            while next != 0 {
                guard pe - (p + h) >= 4 else { return fail(.gtpBadHeader) }
                let len = Int(f.u8(p + h)) &* 4
                guard len > 0, pe - (p + h) >= len else { return fail(.gtpBadHeader) }
                next = f.u8(p + h + len - 1)
                h += len
                count += 1
                guard count < 16 else { return fail(.gtpBadHeader) }
            }
        }
        guard messageType == 0xFF else { return .done }   // signalling (echo, ...): plain UDP
        guard pe - (p + h) >= 1 else { return .done }
        let version = f.u8(p + h) >> 4
        guard version == 4 || version == 6 else { return fail(.gtpBadPayload) }
        guard enterTunnel(.gtpu, innerStart: p + h, innerEnd: pe, synth: version == 4 ? 0x0800 : 0x86DD,
                          outerProto: 17, sport: sport, dport: dport, id: teid) else { return .done }
        return version == 4 ? .ipv4 : .ipv6
    }

    /// Teredo: optional authentication and origin indication, then an IPv6 packet that fills
    /// the datagram exactly. Anything else on the port is ordinary UDP.
    mutating func teredo(sport: UInt16, dport: UInt16, payload p0: Int, payloadEnd pe: Int, strict: Bool = false) -> Next {
        var p = p0
        if pe - p >= 4 && f.be16(p) == 0x0001 {
            let len = 4 + Int(f.u8(p + 2)) + Int(f.u8(p + 3)) + 9
            guard pe - p >= len else { return .done }
            p += len
        }
        if pe - p >= 8 && f.be16(p) == 0x0000 { p += 8 }
        guard pe - p >= 40, f.u8(p) >> 4 == 6, 40 + Int(f.be16(p + 4)) == pe - p else { return .done }
        if strict {
            let teredoPrefix: UInt32 = 0x2001_0000
            guard f.be32(p + 8) == teredoPrefix || f.be32(p + 24) == teredoPrefix else { return .done }
        }
        guard enterTunnel(.teredo, innerStart: p, innerEnd: pe, synth: 0x86DD, outerProto: 17,
                          sport: sport, dport: dport) else { return .done }
        return .ipv6
    }

    mutating func ayiya(sport: UInt16, dport: UInt16, payload p: Int, payloadEnd pe: Int) -> Next {
        guard pe - p >= 8 else { return fail(.ayiyaBadHeader) }
        let idLen = 1 << Int(f.u8(p) >> 4)
        let sigLen = Int(f.u8(p + 1) >> 4) &* 4
        let opcode = f.u8(p + 2) & 0x0F
        let next = f.u8(p + 3)
        let h = 8 + idLen + sigLen
        guard pe - p >= h else { return fail(.ayiyaBadHeader) }
        guard opcode == 1 else { return .done }        // not "forward": heartbeats and the like
        let synth: UInt16
        switch next {
        case 4: synth = 0x0800
        case 41: synth = 0x86DD
        default: return fail(.ayiyaBadHeader)
        }
        guard enterTunnel(.ayiya, innerStart: p + h, innerEnd: pe, synth: synth, outerProto: 17,
                          sport: sport, dport: dport) else { return .done }
        return next == 4 ? .ipv4 : .ipv6
    }
}
