// IPv4, IPv6 and the transport headers above them.

extension Walk {
    mutating func ipByVersion() -> Next {
        guard end - off >= 1 else { return fail(.truncatedIPv4) }
        switch f.u8(off) >> 4 {
        case 4: return .ipv4
        case 6: return .ipv6
        default:
            d.nonIP = true
            return fail(.badIPVersion)
        }
    }

    mutating func ipv4() -> Next {
        guard end - off >= 20 else { return fail(.truncatedIPv4) }
        let vihl = f.u8(off)
        let ihl = Int(vihl & 0x0F) &* 4
        var total = Int(f.be16(off + 2))
        // A total length of 0 is what TCP segmentation offload (and Linux BIG TCP, past 64 KiB)
        // leaves in locally captured packets: the datagram is what was captured.
        if total == 0 { total = end - off }
        guard vihl >> 4 == 4, ihl >= 20, total >= ihl else { return fail(.badIPv4Header) }
        guard end - off >= ihl else { return fail(.truncatedIPv4) }
        let proto = f.u8(off + 9)
        var k = FlowKey()
        k.srcLo = FlowKey.v4Mapped(f.be32(off + 12))
        k.dstLo = FlowKey.v4Mapped(f.be32(off + 16))
        k.proto = proto
        k.kind = .addresses
        d.key = k
        d.nonIP = false
        d.l3 = off
        ipSrcHi = 0; ipSrcLo = k.srcLo; ipDstHi = 0; ipDstLo = k.dstLo; ipIsV6 = false
        // The datagram ends at its total length (Ethernet padding is not part of it) unless
        // the capture was cut shorter.
        if off + total < end { end = off + total }
        let id = UInt32(f.be16(off + 4))
        let frag = f.be16(off + 6)
        let fragOffset = Int(frag & 0x1FFF) &* 8
        let more = frag & 0x2000 != 0
        let payload = off + ihl
        off = payload
        if fragOffset != 0 || more {
            return fragment(id: id, offset: fragOffset, more: more,
                            proto: proto, isIPv6: false)
        }
        return l4(proto)
    }

    mutating func ipv6() -> Next {
        guard end - off >= 40 else { return fail(.truncatedIPv6) }
        guard f.u8(off) >> 4 == 6 else { return fail(.badIPv6Header) }
        let plen = Int(f.be16(off + 4))
        var nh = f.u8(off + 6)
        var k = FlowKey()
        k.srcHi = f.be64(off + 8); k.srcLo = f.be64(off + 16)
        k.dstHi = f.be64(off + 24); k.dstLo = f.be64(off + 32)
        k.kind = .addresses
        d.l3 = off
        d.nonIP = false
        ipSrcHi = k.srcHi; ipSrcLo = k.srcLo; ipDstHi = k.dstHi; ipDstLo = k.dstLo; ipIsV6 = true
        if plen != 0 && off + 40 + plen < end { end = off + 40 + plen }
        off += 40
        // A first fragment (offset 0, more to come) holds every header up to the upper layer
        // (RFC 8200): the walk goes on past its fragment header to find the ports.
        var firstFragment = false
        var fragID: UInt32 = 0, fragNext: UInt8 = 0, fragPayload = 0
        var headers = 0
        while true {
            k.proto = nh
            d.key = k
            switch nh {
            case 0, 43, 60, 135, 139, 140:   // hop-by-hop, routing, destination, mobility, HIP, shim6
                guard end - off >= 8 else { return extensionTruncated(firstFragment, fragID, fragNext, fragPayload) }
                let len = (Int(f.u8(off + 1)) + 1) &* 8
                guard end - off >= len else { return extensionTruncated(firstFragment, fragID, fragNext, fragPayload) }
                nh = f.u8(off)
                off += len
            case 51:                         // authentication header
                guard end - off >= 8 else { return extensionTruncated(firstFragment, fragID, fragNext, fragPayload) }
                let len = (Int(f.u8(off + 1)) + 2) &* 4
                guard end - off >= len else { return extensionTruncated(firstFragment, fragID, fragNext, fragPayload) }
                nh = f.u8(off)
                off += len
            case 44:                         // fragment header
                guard !firstFragment else {  // a second one: the datagram is a fragment, no ports
                    d.key.proto = fragNext
                    return fragment(id: fragID, offset: 0, more: true, proto: fragNext, isIPv6: true, payloadStart: fragPayload)
                }
                guard end - off >= 8 else { return fail(.truncatedIPv6) }
                let next = f.u8(off)
                let fo = f.be16(off + 2)
                let id = f.be32(off + 4)
                off += 8
                let offset = Int(fo & 0xFFF8), more = fo & 1 != 0
                nh = next
                if offset == 0 && !more { break }   // an atomic fragment is a whole datagram (RFC 6946)
                if offset != 0 {
                    d.key.proto = next
                    return fragment(id: id, offset: offset, more: more, proto: next, isIPv6: true)
                }
                firstFragment = true
                fragID = id; fragNext = next; fragPayload = off
            default:
                if firstFragment {
                    return fragment(id: fragID, offset: 0, more: true, proto: fragNext, isIPv6: true,
                                    payloadStart: fragPayload, upper: nh)
                }
                return l4(nh)
            }
            headers += 1
            guard headers <= 16 else {
                if firstFragment {
                    d.key.proto = fragNext
                    _ = fragment(id: fragID, offset: 0, more: true, proto: fragNext, isIPv6: true, payloadStart: fragPayload)
                }
                return fail(.tooManyExtensionHeaders)
            }
        }
    }

    /// An extension header runs past the end: a first fragment is still reported as one.
    mutating func extensionTruncated(_ firstFragment: Bool, _ id: UInt32, _ next: UInt8, _ payload: Int) -> Next {
        if firstFragment {
            d.key.proto = next
            _ = fragment(id: id, offset: 0, more: true, proto: next, isIPv6: true, payloadStart: payload)
        }
        return fail(.truncatedIPv6)
    }

    /// An IP fragment: note it for the fragment table; a first fragment still gives the ports
    /// and tells whether it starts a tunnel, but a partial datagram is never decapsulated.
    /// `proto` is the protocol the IP header (IPv4) or the fragment header (IPv6) names, the
    /// same in every fragment; `upper` is the upper-layer protocol whose header is at `off`,
    /// when extension headers lie between (IPv6 first fragments), and `payloadStart` where the
    /// fragment's payload starts (default: `off`).
    mutating func fragment(id: UInt32, offset: Int, more: Bool, proto: UInt8, isIPv6: Bool,
                           payloadStart: Int? = nil, upper: UInt8? = nil) -> Next {
        d.isFragment = true
        var fi = FragmentInfo()
        fi.id = id
        fi.offset = offset
        fi.more = more
        fi.proto = proto
        fi.isIPv6 = isIPv6
        fi.payloadStart = payloadStart ?? off
        fi.payloadEnd = end
        if let upper { d.key.proto = upper }
        if offset == 0 && (upper != nil || payloadStart == nil) {
            switch upper ?? proto {
            case 6:
                if end - off >= 4 { setPorts(f.be16(off), f.be16(off + 2)) }
            case 17:
                if end - off >= 4 {
                    let sp = f.be16(off), dp = f.be16(off + 2)
                    setPorts(sp, dp)
                    fi.tunnel = dec.udpTunnel(sp, dp) != .none
                }
            case 4, 41, 47:
                fi.tunnel = true
            default:
                break
            }
        }
        d.fragment = fi
        return .done
    }

    @inline(__always)
    mutating func setPorts(_ sport: UInt16, _ dport: UInt16) {
        d.key.sport = sport
        d.key.dport = dport
        d.key.kind = .ports
    }

    /// The transport header of a complete (unfragmented) IP packet.
    mutating func l4(_ proto: UInt8) -> Next {
        switch proto {
        // SCTP (132) and every other protocol hash on the two addresses: Zeek keys them so
        // (its Unknown_IP_Transport connection), so all of an association's ports stay on one
        // worker
        case 6:                              // TCP: the ports are the first 4 bytes
            guard end - off >= 4 else { return fail(.truncatedL4) }
            setPorts(f.be16(off), f.be16(off + 2))
            return .done
        case 17:
            guard end - off >= 8 else {
                if end - off >= 4 { setPorts(f.be16(off), f.be16(off + 2)) }
                return fail(.truncatedL4)
            }
            let sp = f.be16(off), dp = f.be16(off + 2)
            setPorts(sp, dp)
            let kind = dec.udpTunnel(sp, dp)
            if kind == .none {
                // Teredo also runs between ephemeral ports (client to relay); like Zeek, find
                // it by its shape: the payload is exactly one IPv6 packet to or from 2001:0::/32.
                if dec.config.teredoAnyPort && end - off >= 48 && f.u8(off + 8) >> 4 == 6 {
                    let len = Int(f.be16(off + 4))
                    let payloadEnd = len >= 8 && off + len <= end ? off + len : end
                    return teredo(sport: sp, dport: dp, payload: off + 8, payloadEnd: payloadEnd, strict: true)
                }
                return .done
            }
            let len = Int(f.be16(off + 4))
            let payloadEnd = len >= 8 && off + len < end ? off + len : end
            return udpTunnel(kind, sport: sp, dport: dp, payload: off + 8, payloadEnd: payloadEnd)
        case 1:
            return icmp4()
        case 58:
            return icmp6()
        case 4:
            guard enterTunnel(.ipip, innerStart: off, innerEnd: end, synth: 0x0800, outerProto: 4) else { return .done }
            return .ipv4
        case 41:
            guard enterTunnel(.ipip, innerStart: off, innerEnd: end, synth: 0x86DD, outerProto: 41) else { return .done }
            return .ipv6
        case 47:
            return gre(kind: .gre, outerProto: 47, sport: 0, dport: 0)
        default:
            return .done
        }
    }

    /// ICMP errors hash like the packet they quote, so they reach that flow's worker; other
    /// ICMP messages hash on the two addresses.
    mutating func icmp4() -> Next {
        guard end - off >= 8 else { return fail(.truncatedL4) }
        switch f.u8(off) {
        case 3, 4, 5, 11, 12: return quotedIPv4(at: off + 8)
        default: return .done
        }
    }

    mutating func icmp6() -> Next {
        guard end - off >= 8 else { return fail(.truncatedL4) }
        switch f.u8(off) {
        case 1, 2, 3, 4: return quotedIPv6(at: off + 8)
        default: return .done
        }
    }

    mutating func quotedIPv4(at q: Int) -> Next {
        guard end - q >= 20, f.u8(q) >> 4 == 4 else { d.error = .badICMPQuote; return .done }
        let ihl = Int(f.u8(q) & 0x0F) &* 4
        guard ihl >= 20, end - q >= ihl else { d.error = .badICMPQuote; return .done }
        var k = FlowKey()
        k.srcLo = FlowKey.v4Mapped(f.be32(q + 12))
        k.dstLo = FlowKey.v4Mapped(f.be32(q + 16))
        k.proto = f.u8(q + 9)
        k.kind = .addresses
        d.key = k
        let firstFragment = f.be16(q + 6) & 0x1FFF == 0
        quotedPorts(at: q + ihl, proto: k.proto, firstFragment: firstFragment)
        return .done
    }

    mutating func quotedIPv6(at q: Int) -> Next {
        guard end - q >= 40, f.u8(q) >> 4 == 6 else { d.error = .badICMPQuote; return .done }
        var k = FlowKey()
        k.srcHi = f.be64(q + 8); k.srcLo = f.be64(q + 16)
        k.dstHi = f.be64(q + 24); k.dstLo = f.be64(q + 32)
        // Walk the quoted packet's extension headers (bounded) to its transport header, so the
        // error hashes like the flow even when the quoted packet carried some.
        var nh = f.u8(q + 6)
        var p = q + 40
        var first = true
        var headers = 0
        walk: while headers < 8 {
            headers += 1
            switch nh {
            case 0, 43, 60:
                guard end - p >= 8 else { break walk }
                let len = (Int(f.u8(p + 1)) + 1) &* 8
                guard end - p >= len else { break walk }
                nh = f.u8(p)
                p += len
            case 44:
                guard end - p >= 8 else { break walk }
                first = f.be16(p + 2) & 0xFFF8 == 0
                nh = f.u8(p)
                p += 8
            default:
                break walk
            }
        }
        k.proto = nh
        k.kind = .addresses
        d.key = k
        quotedPorts(at: p, proto: nh, firstFragment: first)
        return .done
    }

    mutating func quotedPorts(at p: Int, proto: UInt8, firstFragment: Bool) {
        switch proto {
        case 6, 17:
            if firstFragment && end - p >= 4 { setPorts(f.be16(p), f.be16(p + 2)) }
        default:
            break
        }
    }
}
