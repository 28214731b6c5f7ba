// Link layers other than Ethernet. Rings always carry Ethernet frames, so these are converted:
// an Ethernet header is synthesized in front of the network-layer payload. A frame with no
// Ethernet equivalent (802.11 management, encrypted data) is delivered whole behind an
// Ethernet header of EtherType 0x88B5 (IEEE local experimental), so nothing is dropped.

/// EtherType of the wrapper for frames that have no Ethernet form.
public let opaqueEtherType: UInt16 = 0x88B5

extension Walk {
    /// BSD loopback (DLT_NULL host order, DLT_LOOP network order): a 4-byte address family.
    /// The IP version nibble decides, since the family numbers differ between systems.
    mutating func nullHeader() -> Next {
        guard f.count >= 5 else { return fail(.truncatedLink) }
        off = 4
        setDelivery(start: 4, synth: f.u8(4) >> 4 == 6 ? 0x86DD : 0x0800)
        return .ip
    }

    /// Linux cooked capture v1: 16 bytes, protocol at 14, sender address at 6.
    mutating func sll() -> Next {
        guard f.count >= 16 else { return fail(.truncatedLink) }
        let halen = f.be16(4)
        return cooked(proto: f.be16(14), headerLength: 16, addressOffset: halen == 6 ? 6 : -1)
    }

    /// Linux cooked capture v2: 20 bytes, protocol at 0, sender address at 12.
    mutating func sll2() -> Next {
        guard f.count >= 20 else { return fail(.truncatedLink) }
        let halen = f.u8(11)
        return cooked(proto: f.be16(0), headerLength: 20, addressOffset: halen == 6 ? 12 : -1)
    }

    mutating func cooked(proto: UInt16, headerLength: Int, addressOffset: Int) -> Next {
        off = headerLength
        if proto < 0x0600 {                  // 802.2 / 802.3 frames carry no EtherType
            setDelivery(start: 0, synth: opaqueEtherType)
            d.nonIP = true
            return .done
        }
        setDelivery(start: headerLength, synth: proto, src: addressOffset)
        if addressOffset >= 0 {
            var k = FlowKey()
            k.srcHi = 1 << 63; k.dstHi = 1 << 63
            k.srcLo = f.mac(addressOffset)
            k.kind = .link
            d.key = k
        }
        return .etherType(proto)
    }

    /// Radiotap: a little-endian length at offset 2, then 802.11. When the radiotap flags say
    /// the frame ends with an FCS, the FCS is not delivered.
    mutating func radiotap() -> Next {
        guard f.count >= 8 else { return fail(.truncatedLink) }
        let len = Int(f.le16(2))
        guard len >= 8, f.count >= len else { return fail(.truncatedLink) }
        // Find the Flags field (bit 1): after the present words, after TSFT (bit 0, 8-aligned).
        var p = 4
        var present = f.le32(p)
        let first = present
        var words = 0
        while present & 0x8000_0000 != 0 {
            p += 4
            words += 1
            guard words < 8, len - p >= 4 else { return fail(.truncatedLink) }
            present = f.le32(p)
        }
        p += 4
        if first & 2 != 0 {
            if first & 1 != 0 { p = (p + 7) & ~7; p += 8 }
            if p < len && f.u8(p) & 0x10 != 0 && end - len >= 4 {
                end -= 4
                d.end = end
            }
        }
        off = len
        return .wifi
    }

    /// An 802.11 frame (directly, in radiotap, or in Aruba's GRE): data frames with LLC/SNAP
    /// become Ethernet frames; A-MSDU subframes are delivered one by one.
    mutating func wifi() -> Next {
        let frameStart = off
        guard end - off >= 24 else { return opaqueWifi(frameStart, error: .truncatedLink) }
        let fc0 = f.u8(off), fc1 = f.u8(off + 1)
        let type = (fc0 >> 2) & 3
        let subtype = fc0 >> 4
        // Only unprotected data frames that carry data have an Ethernet form.
        guard type == 2, fc1 & 0x40 == 0, subtype & 0x4 == 0 else { return opaqueWifi(frameStart, error: .none) }
        let toDS = fc1 & 1 != 0, fromDS = fc1 & 2 != 0
        var h = 24
        if toDS && fromDS { h += 6 }
        var amsdu = false
        if subtype & 0x8 != 0 {                            // QoS data: QoS control, maybe HT control
            guard end - off >= h + 2 else { return opaqueWifi(frameStart, error: .truncatedLink) }
            amsdu = f.u8(off + h) & 0x80 != 0
            h += 2
            if fc1 & 0x80 != 0 { h += 4 }
        }
        guard end - off >= h else { return opaqueWifi(frameStart, error: .truncatedLink) }
        let da = toDS ? off + 16 : off + 4
        let sa = fromDS ? (toDS ? off + 24 : off + 16) : off + 10
        setLinkKey(dst: da, src: sa)
        let payload = off + h
        if amsdu { return amsduSubframe(payload, frameStart: frameStart) }
        // LLC/SNAP with an EtherType (not an 802.3 length, which has no Ethernet II form)
        guard end - payload >= 8, f.u8(payload) == 0xAA, f.u8(payload + 1) == 0xAA, f.u8(payload + 2) == 0x03,
              f.be16(payload + 6) >= 0x0600 else {
            return opaqueWifi(frameStart, error: .none)
        }
        let t = f.be16(payload + 6)
        setDelivery(start: payload + 8, synth: t, dst: da, src: sa)
        off = payload + 8
        return .etherType(t)
    }

    /// A-MSDU: subframes of DA, SA, length and an LLC/SNAP payload, each padded to 4 bytes.
    mutating func amsduSubframe(_ payload: Int, frameStart: Int) -> Next {
        var p = payload
        var index = 0
        while index < 64 {
            guard end - p >= 14 else { return opaqueWifi(frameStart, error: .truncatedLink) }
            let len = Int(f.be16(p + 12))
            guard end - (p + 14) >= len else { return opaqueWifi(frameStart, error: .truncatedLink) }
            let subEnd = p + 14 + len
            let next = subEnd + (4 - (14 + len) % 4) % 4
            if index == subframe {
                if end - next >= 14 && !(dec.config.keepEncapsulation && d.depth > 0) {
                    d.nextSubframe = subframe + 1
                }
                setLinkKey(dst: p, src: p + 6)
                end = subEnd
                let llc = p + 14
                guard len >= 8, f.u8(llc) == 0xAA, f.u8(llc + 1) == 0xAA, f.u8(llc + 2) == 0x03,
                      f.be16(llc + 6) >= 0x0600 else {
                    d.nonIP = true
                    setDelivery(start: llc, end: subEnd, synth: opaqueEtherType, dst: p, src: p + 6)
                    return .done
                }
                let t = f.be16(llc + 6)
                setDelivery(start: llc + 8, end: subEnd, synth: t, dst: p, src: p + 6)
                off = llc + 8
                return .etherType(t)
            }
            p = next
            index += 1
        }
        return opaqueWifi(frameStart, error: .wifiUnsupported)
    }

    mutating func opaqueWifi(_ frameStart: Int, error: ParseError) -> Next {
        d.nonIP = true
        setDelivery(start: frameStart, synth: opaqueEtherType)
        if error != .none { d.error = error }
        return .done
    }
}
