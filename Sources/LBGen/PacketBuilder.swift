// Builds frames from layers, innermost first: each layer wraps the bytes of the layers after
// it, so lengths are exact; an IP layer fills in the TCP/UDP/ICMPv6 checksum of the layer it
// carries (the pseudo-header needs its addresses).
//
//     let frame = PacketBuilder.build(
//         .ethernet(), .vlan(id: 10),
//         .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .udp(sport: 40000, dport: 4789), .vxlan(vni: 7),
//         .ethernet(), .ipv4(src: "10.0.0.1", dst: "10.0.0.2"), .tcp(sport: 1234, dport: 80, flags: .syn))

public enum PacketBuilder {
    /// The bytes of a frame made of `layers`, outermost first.
    public static func build(_ layers: Layer...) -> [UInt8] { build(layers) }

    public static func build(_ layers: [Layer]) -> [UInt8] {
        var bytes: [UInt8] = []
        var i = layers.count - 1
        while i >= 0 {
            bytes = layers[i].wrap(bytes, next: i + 1 < layers.count ? layers[i + 1] : nil)
            i -= 1
        }
        return bytes
    }
}

extension Layer {
    /// EtherType announcing this layer (also GENEVE's protocol field).
    var etherType: UInt16? {
        switch self {
        case .ipv4: 0x0800
        case .ipv6: 0x86DD
        case .ip(let b): b.first.map { $0 >> 4 == 6 ? 0x86DD : 0x0800 }
        case .vlan(_, _, _, let tpid, _): tpid
        case .vntag: 0x8926
        case .mpls: 0x8847
        case .pppoe: 0x8864
        case .arp: 0x0806
        case .ethernet: 0x6558
        case .pbb: 0x88E7
        default: nil
        }
    }

    /// IP protocol number of this layer.
    var ipProtocol: UInt8? {
        switch self {
        case .ipv4: 4
        case .ipv6: 41
        case .ip(let b): b.first.map { $0 >> 4 == 6 ? 41 : 4 }
        case .tcp: 6
        case .udp: 17
        case .sctp: 132
        case .icmp: 1
        case .icmp6: 58
        case .gre, .pptp: 47
        default: nil
        }
    }

    /// GRE protocol type announcing this layer.
    var greProtocol: UInt16? {
        switch self {
        case .erspan1, .erspan2: 0x88BE
        case .erspan3: 0x22EB
        case .wifi: 0x8200
        default: etherType
        }
    }

    /// PPP protocol number of this layer.
    var pppProtocol: UInt16? {
        switch self {
        case .ipv4: 0x0021
        case .ipv6: 0x0057
        case .ip(let b): b.first.map { $0 >> 4 == 6 ? 0x0057 : 0x0021 }
        case .mpls: 0x0281
        default: nil
        }
    }

    func wrap(_ payload: [UInt8], next: Layer?) -> [UInt8] {
        var o: [UInt8] = []
        switch self {
        case .ethernet(let dst, let src, let type):
            o = dst.bytes + src.bytes
            if case .llcSnap? = next, type == nil {
                o.be16(UInt16(payload.count))
            } else {
                o.be16(type ?? next?.etherType ?? 0x88B5)
            }
            o += payload

        case .vlan(let id, let pcp, let dei, _, let type):
            o.be16(UInt16(pcp & 7) << 13 | (dei ? 0x1000 : 0) | id & 0x0FFF)
            o.be16(type ?? next?.etherType ?? 0x88B5)
            o += payload

        case .vntag(let dvif, let svif, let type):
            o.be16(dvif & 0x3FFF)
            o.be16(svif & 0x0FFF)
            o.be16(type ?? next?.etherType ?? 0x88B5)
            o += payload

        case .mpls(let labels, let tc, let ttl, let controlWord):
            for (i, label) in labels.enumerated() {
                let bottom: UInt32 = i == labels.count - 1 ? 0x100 : 0
                o.be32((label & 0xFFFFF) << 12 | UInt32(tc & 7) << 9 | bottom | UInt32(ttl))
            }
            if controlWord { o += [0, 0, 0, 0] }
            o += payload

        case .pppoe(let session, let pppProtocol):
            o = [0x11, 0x00]
            o.be16(session)
            o.be16(UInt16(payload.count + 2))
            o.be16(pppProtocol ?? next?.pppProtocol ?? 0xC021)
            o += payload

        case .llcSnap(let oui, let type):
            o = [0xAA, 0xAA, 0x03, UInt8(oui >> 16 & 0xFF), UInt8(oui >> 8 & 0xFF), UInt8(oui & 0xFF)]
            o.be16(type ?? next?.etherType ?? 0x88B5)
            o += payload

        case .ieee8023(let dst, let src, let length, let padding):
            o = dst.bytes + src.bytes
            o.be16(length ?? UInt16(truncatingIfNeeded: payload.count))
            o += payload
            o += Array(repeating: 0, count: max(0, padding))

        case .llc(let dsap, let ssap, let control):
            o = [dsap, ssap, control] + payload

        case .pbb(let isid, let pcp, let dei):
            o.be32(UInt32(pcp & 7) << 29 | (dei ? 1 << 28 : 0) | isid & 0xFF_FFFF)
            o += payload

        case .fabricPath(let dst, let src, let ftag, let ttl, let fcs):
            o = dst.bytes + src.bytes
            o.be16(0x8903)
            o.be16((ftag & 0x3FF) << 6 | UInt16(ttl & 0x3F))
            o += payload
            if fcs { o.le32(Checksum.crc32(o)) }

        case .ciscoHDLC(let address, let type):
            o = [address, 0]
            o.be16(type ?? next?.etherType ?? 0x88B5)
            o += payload

        case .nflog(let family, let version, let resourceID, let prefix):
            var fam: UInt8 = 2
            if next?.etherType == 0x86DD { fam = 10 }
            o = [family ?? fam, version]
            o.be16(resourceID)
            func tlv(_ type: UInt16, _ value: [UInt8]) {
                let len = UInt16(truncatingIfNeeded: 4 + value.count)
                o += [UInt8(len & 0xFF), UInt8(len >> 8), UInt8(type & 0xFF), UInt8(type >> 8)] + value
                while o.count % 4 != 0 { o.append(0) }
            }
            var hdr: [UInt8] = []
            hdr.be16(next?.etherType ?? 0)                  // NFULA_PACKET_HDR: hw_protocol, hook, pad
            hdr += [3, 0]
            tlv(1, hdr)
            tlv(10, Array(prefix.utf8) + [0])              // NFULA_PREFIX, NUL-terminated
            tlv(9, payload)                                 // NFULA_PAYLOAD

        case .fddi(let frameControl, let dst, let src):
            o = [frameControl] + dst.bytes + src.bytes + payload

        case .arp(let operation, let senderMAC, let senderIP, let targetMAC, let targetIP):
            o = [0, 1, 0x08, 0x00, 6, 4]
            o.be16(operation)
            o += senderMAC.bytes + senderIP.bytes + targetMAC.bytes + targetIP.bytes
            o += payload

        case .sll(let packetType, let address, let addressLength, let proto):
            o.be16(packetType)
            o.be16(1)                               // ARPHRD_ETHER
            o.be16(addressLength)
            o += address.bytes + [0, 0]
            o.be16(proto ?? next?.etherType ?? 0x0004)
            o += payload

        case .sll2(let packetType, let address, let addressLength, let interface, let proto):
            o.be16(proto ?? next?.etherType ?? 0x0004)
            o.be16(0)
            o.be32(interface)
            o.be16(1)
            o.append(packetType)
            o.append(addressLength)
            o += address.bytes + [0, 0]
            o += payload

        case .null(let family, let networkOrder):
            var fam: UInt32 = 2
            if case .ipv6? = next { fam = 30 }
            if case .ip(let b)? = next, b.first.map({ $0 >> 4 == 6 }) == true { fam = 30 }
            if networkOrder { o.be32(family ?? fam) } else { o.le32(family ?? fam) }
            o += payload

        case .radiotap(let tsft, let fcs, let flags, let extraPresentWords):
            // present: TSFT (bit 0), Flags (bit 1), Rate (bit 2); bit 31: another word follows
            var present: UInt32 = 0b110 | (tsft ? 1 : 0)
            if extraPresentWords > 0 { present |= 0x8000_0000 }
            var fields: [UInt8] = []
            var words: [UInt32] = [present]
            for i in 0..<extraPresentWords { words.append(i == extraPresentWords - 1 ? 0 : 0x8000_0000) }
            let fieldStart = 4 + 4 * words.count
            if tsft {
                while (fieldStart + fields.count) % 8 != 0 { fields.append(0) }
                fields.le64(0x0000_0001_0203_0405)
            }
            fields.append(flags | (fcs ? 0x10 : 0))
            fields.append(0x0C)                     // rate: 6 Mbit/s
            let len = fieldStart + fields.count
            o = [0, 0]
            o.le16(UInt16(len))
            for w in words { o.le32(w) }
            o += fields
            o += payload
            if fcs { o.le32(Checksum.crc32(payload)) }

        case .wifi(var h):
            if case .amsdu? = next { h.amsdu = true }
            o.append(h.subtype << 4 | (h.type & 3) << 2)
            var fc1: UInt8 = 0
            if h.toDS { fc1 |= 1 }
            if h.fromDS { fc1 |= 2 }
            if h.protected { fc1 |= 0x40 }
            if h.htControl { fc1 |= 0x80 }
            o.append(fc1)
            o.be16(0x2C00)                          // duration
            o += h.addr1.bytes + h.addr2.bytes + h.addr3.bytes
            o += [0x10, 0x00]                       // sequence control
            if h.toDS && h.fromDS { o += (h.addr4 ?? MAC(0)).bytes }
            if h.isQoS {
                o += [h.tid & 0x0F | (h.amsdu ? 0x80 : 0), 0]
                if h.htControl { o += [0, 0, 0, 0] }
            }
            o += payload

        case .amsdu(let subframes):
            for (i, s) in subframes.enumerated() {
                var body: [UInt8] = []
                if s.llcSnap {
                    body = [0xAA, 0xAA, 0x03, 0, 0, 0]
                    body.be16(s.etherType)
                }
                body += s.packet
                o += s.da.bytes + s.sa.bytes
                o.be16(UInt16(body.count))
                o += body
                if i < subframes.count - 1 {
                    while o.count % 4 != 0 { o.append(0) }   // each subframe padded to 4 bytes
                }
            }
            o += payload

        case .ipv4(let h):
            let opts = h.options + Array(repeating: 0, count: (4 - h.options.count % 4) % 4)
            let ihl = 20 + opts.count
            let proto = h.proto ?? next?.ipProtocol ?? 253
            var l4 = payload
            if h.fragmentOffset == 0 {
                patchL4Checksum(&l4, next: next, proto: proto, src: h.src.bytes, dst: h.dst.bytes)
            }
            o = [UInt8(0x40 | ihl / 4), h.tos]
            o.be16(UInt16(truncatingIfNeeded: h.totalLength ?? (ihl + l4.count)))
            o.be16(h.id)
            o.be16((h.df ? 0x4000 : 0) | (h.mf ? 0x2000 : 0) | UInt16(h.fragmentOffset / 8 & 0x1FFF))
            o += [h.ttl, proto, 0, 0]
            o += h.src.bytes + h.dst.bytes + opts
            o.setBE16(Checksum.internet(o), at: 10)
            o += l4

        case .ipv6(let h):
            let upper = h.nextHeader ?? next?.ipProtocol ?? 59
            var ext: [UInt8] = []
            var finalDst = h.dst
            var isLaterFragment = false
            for (i, e) in h.ext.enumerated() {
                let nh = i + 1 < h.ext.count ? h.ext[i + 1].number : upper
                ext += e.encode(nextHeader: nh)
                if case .routing(_, _, let addrs) = e, let last = addrs.last { finalDst = last }
                if case .fragment(let off, _, _) = e, off != 0 { isLaterFragment = true }
            }
            var l4 = payload
            if !isLaterFragment {
                patchL4Checksum(&l4, next: next, proto: upper, src: h.src.bytes, dst: finalDst.bytes)
            }
            o.be32(6 << 28 | UInt32(h.trafficClass) << 20 | h.flowLabel & 0xFFFFF)
            o.be16(UInt16(truncatingIfNeeded: ext.count + l4.count))
            o.append(h.ext.first?.number ?? upper)
            o.append(h.hopLimit)
            o += h.src.bytes + h.dst.bytes + ext + l4

        case .ip(let b):
            o = b + payload

        case .tcp(let sport, let dport, let seq, let ack, let flags, let window, let options):
            let opts = options + Array(repeating: 1, count: (4 - options.count % 4) % 4)   // NOP padding
            o.be16(sport)
            o.be16(dport)
            o.be32(seq)
            o.be32(ack)
            o.append(UInt8((20 + opts.count) / 4) << 4)
            o.append(flags.rawValue)
            o.be16(window)
            o += [0, 0, 0, 0]                       // checksum (set by the IP layer), urgent pointer
            o += opts + payload

        case .udp(let sport, let dport, _):
            o.be16(sport)
            o.be16(dport)
            o.be16(UInt16(truncatingIfNeeded: 8 + payload.count))
            o += [0, 0]
            o += payload

        case .sctp(let sport, let dport, let tag):
            o.be16(sport)
            o.be16(dport)
            o.be32(tag)
            o += [0, 0, 0, 0]
            o += payload
            let crc = Checksum.crc32c(o)
            o[8] = UInt8(crc & 0xFF); o[9] = UInt8(crc >> 8 & 0xFF)
            o[10] = UInt8(crc >> 16 & 0xFF); o[11] = UInt8(crc >> 24)

        case .icmp(let type, let code, let rest, let quoteLimit):
            o = [type, code, 0, 0]
            o.be32(rest)
            o += quoteLimit.map { Array(payload.prefix($0)) } ?? payload
            o.setBE16(Checksum.internet(o), at: 2)

        case .icmp6(let type, let code, let rest, let quoteLimit):
            o = [type, code, 0, 0]
            o.be32(rest)
            o += quoteLimit.map { Array(payload.prefix($0)) } ?? payload

        case .vxlan(let vni, let flags):
            o = [flags, 0, 0, 0]
            o.be32(vni << 8)
            o += payload

        case .geneve(let vni, let options, let proto, let oam, let critical, let version):
            var opts: [UInt8] = []
            for opt in options {
                let data = opt.data + Array(repeating: 0, count: (4 - opt.data.count % 4) % 4)
                opts.be16(opt.optionClass)
                opts.append(opt.type)
                opts.append(UInt8(data.count / 4 & 0x1F))
                opts += data
            }
            o.append(version << 6 | UInt8(opts.count / 4 & 0x3F))
            o.append((oam ? 0x80 : 0) | (critical ? 0x40 : 0))
            o.be16(proto ?? next?.etherType ?? 0x6558)
            o.be32(vni << 8)
            o += opts + payload

        case .gre(let checksum, let key, let seq, let routing, let version, let proto):
            var flags = UInt16(version & 7)
            if checksum { flags |= 0x8000 }
            if routing { flags |= 0x4000 }
            if key != nil { flags |= 0x2000 }
            if seq != nil { flags |= 0x1000 }
            o.be16(flags)
            o.be16(proto ?? next?.greProtocol ?? 0x88B5)
            if checksum || routing { o += [0, 0, 0, 0] }
            if let key { o.be32(key) }
            if let seq { o.be32(seq) }
            o += payload
            if checksum { o.setBE16(Checksum.internet(o), at: 4) }

        case .pptp(let callID, let seq, let ack):
            var flags: UInt16 = 0x2000 | 1
            if seq != nil { flags |= 0x1000 }
            if ack != nil { flags |= 0x0080 }
            o.be16(flags)
            o.be16(0x880B)
            o.be16(UInt16(truncatingIfNeeded: payload.count))
            o.be16(callID)
            if let seq { o.be32(seq) }
            if let ack { o.be32(ack) }
            o += payload

        case .ppp(let proto, let addressControl, let compressed):
            if addressControl { o = [0xFF, 0x03] }
            let p = proto ?? next?.pppProtocol ?? 0xC021
            if compressed { o.append(UInt8(p & 0xFF)) } else { o.be16(p) }
            o += payload

        case .erspan1:
            o = payload

        case .erspan2(let session, let vlan, let cos, let index):
            o.be16(1 << 12 | vlan & 0x0FFF)
            o.be16(UInt16(cos & 7) << 13 | session & 0x03FF)
            o.be32(index & 0xFFFFF)
            o += payload

        case .erspan3(let session, let vlan, let timestamp, let hardwareID, let frameType, let platform):
            var ft: UInt8 = 0
            if let frameType { ft = frameType } else {
                switch next {
                case .ipv4?, .ipv6?, .ip?: ft = 2
                default: ft = 0
                }
            }
            o.be16(2 << 12 | vlan & 0x0FFF)
            o.be16(session & 0x03FF)
            o.be32(timestamp)
            o.be16(0)                               // security group tag
            o.be16(UInt16(ft & 0x1F) << 10 | UInt16(hardwareID & 0x3F) << 4 | (platform ? 1 : 0))
            if platform { o += [0x0C, 0, 0, 0, 0, 0, 0, 0] }
            o += payload

        case .gtpu(let h):
            let optional = h.seq != nil || h.npdu != nil || !h.extensions.isEmpty
            var flags: UInt8 = h.version << 5 | 0x10
            if !h.extensions.isEmpty { flags |= 0x04 }
            if h.seq != nil { flags |= 0x02 }
            if h.npdu != nil { flags |= 0x01 }
            var rest: [UInt8] = []
            if optional {
                rest.be16(h.seq ?? 0)
                rest.append(h.npdu ?? 0)
                rest.append(h.extensions.first?.type ?? 0)
                for (i, e) in h.extensions.enumerated() {
                    var content = e.content
                    while (content.count + 2) % 4 != 0 { content.append(0) }
                    rest.append(UInt8((content.count + 2) / 4))
                    rest += content
                    rest.append(i + 1 < h.extensions.count ? h.extensions[i + 1].type : 0)
                }
            }
            o = [flags, h.messageType]
            o.be16(UInt16(truncatingIfNeeded: rest.count + payload.count))
            o.be32(h.teid)
            o += rest + payload

        case .teredo(let auth, let origin):
            if let a = auth {
                o.be16(1)
                o.append(UInt8(a.clientID.count))
                o.append(UInt8(a.authValue.count))
                o += a.clientID + a.authValue
                o.be32(UInt32(a.nonce >> 32))
                o.be32(UInt32(a.nonce & 0xFFFF_FFFF))
                o.append(a.confirmation)
            }
            if let org = origin {
                o.be16(0)
                o.be16(~org.port)
                o.be32(~org.address.value)
            }
            o += payload

        case .ayiya(let identity, let signature, let opcode, let nextHeader):
            var log2 = 0
            while 1 << log2 < identity.count { log2 += 1 }
            o.append(UInt8(log2) << 4 | 1)          // identity type: integer
            o.append(UInt8(signature.count / 4) << 4 | (signature.isEmpty ? 0 : 2))   // SHA-1
            o.append((signature.isEmpty ? 0 : 2) << 4 | opcode & 0x0F)
            o.append(nextHeader ?? next?.ipProtocol ?? 59)
            o.be32(0x5000_0000)                     // epoch time
            o += identity + Array(repeating: 0, count: (1 << log2) - identity.count)
            o += signature + payload

        case .payload(let b):
            o = b + payload

        case .filler(let n):
            o = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 0x41) } + payload
        }
        return o
    }

    /// Fills in the checksum of the TCP, UDP or ICMPv6 header at the start of `l4`.
    private func patchL4Checksum(_ l4: inout [UInt8], next: Layer?, proto: UInt8, src: [UInt8], dst: [UInt8]) {
        let at: Int
        switch next {
        case .tcp?: at = 16
        case .udp(_, _, let on)?:
            guard on else { return }
            at = 6
        case .icmp6?: at = 2
        default: return
        }
        guard l4.count >= at + 2 else { return }
        l4[at] = 0; l4[at + 1] = 0
        var c = Checksum.internet(l4, initial: Checksum.pseudoHeader(src: src, dst: dst, proto: proto, length: l4.count))
        if c == 0, case .udp? = next { c = 0xFFFF }
        l4.setBE16(c, at: at)
    }
}

extension IPv6Extension {
    func encode(nextHeader nh: UInt8) -> [UInt8] {
        var o: [UInt8] = []
        switch self {
        case .hopByHop(let options), .destination(let options):
            var body = options
            let pad = (8 - (2 + body.count) % 8) % 8
            if pad == 1 { body.append(0) } else if pad > 1 { body += [1, UInt8(pad - 2)] + Array(repeating: 0, count: pad - 2) }
            o = [nh, UInt8((2 + body.count) / 8 - 1)] + body
        case .routing(let type, let segmentsLeft, let addresses):
            o = [nh, UInt8(addresses.count * 2), type, segmentsLeft, 0, 0, 0, 0]
            for a in addresses { o += a.bytes }
        case .fragment(let offset, let more, let id):
            o = [nh, 0]
            o.be16(UInt16(offset & 0xFFF8) | (more ? 1 : 0))
            o.be32(id)
        case .auth(let spi, let icv):
            let total = 12 + icv
            o = [nh, UInt8(total / 4 - 2), 0, 0]
            o.be32(spi)
            o.be32(1)
            o += Array(repeating: 0xA5, count: icv)
        }
        return o
    }
}
