// The layers a frame is built from, outermost first. A type or protocol field left nil is
// filled in from the layer that follows (an Ethernet header before `.ipv4` gets 0x0800, an
// IPv4 header before `.udp` gets 17, a GRE header before `.ethernet` gets 0x6558, ...); lengths
// and checksums are always computed. See `Packet.build`.

/// One header (or a payload) of a frame.
public enum Layer: Sendable {
    // MARK: Link layers

    /// Ethernet II; `type` nil: from the next layer (an 802.3 length before `.llcSnap`).
    case ethernet(dst: MAC = .b, src: MAC = .a, type: UInt16? = nil)
    /// An 802.1Q / 802.1ad tag: `tpid` is the EtherType that announces this tag.
    case vlan(id: UInt16, pcp: UInt8 = 0, dei: Bool = false, tpid: UInt16 = 0x8100, type: UInt16? = nil)
    /// Cisco VN-Tag (EtherType 0x8926): 4 bytes of tag, then the EtherType.
    case vntag(dvif: UInt16 = 0, svif: UInt16 = 0, type: UInt16? = nil)
    /// An MPLS label stack (bottom of stack on the last label), optionally a pseudowire
    /// control word (for Ethernet over MPLS).
    case mpls(labels: [UInt32], tc: UInt8 = 0, ttl: UInt8 = 64, controlWord: Bool = false)
    /// PPPoE session header with its PPP protocol field (nil: from the next layer).
    case pppoe(session: UInt16 = 1, pppProtocol: UInt16? = nil)
    /// 802.2 LLC with a SNAP header carrying an EtherType.
    case llcSnap(oui: UInt32 = 0, type: UInt16? = nil)
    /// An 802.3 header: a length field instead of an EtherType (nil: the length of what
    /// follows), then `padding` zero bytes after the data that the length does not count.
    case ieee8023(dst: MAC = .b, src: MAC = .a, length: UInt16? = nil, padding: Int = 0)
    /// 802.2 LLC without SNAP (3 bytes: DSAP, SSAP, control); the data follows.
    case llc(dsap: UInt8, ssap: UInt8, control: UInt8 = 0x03)
    /// 802.1ah Provider Backbone Bridging I-TAG (EtherType 0x88E7), followed by the
    /// customer's `.ethernet`.
    case pbb(isid: UInt32, pcp: UInt8 = 0, dei: Bool = false)
    /// Cisco FabricPath: outer switch addresses, EtherType 0x8903 and the FTAG/TTL word (16
    /// bytes in all), followed by the classical `.ethernet` frame; `fcs` appends the frame's
    /// FCS (Wireshark's FabricPath dissector expects one).
    case fabricPath(dst: MAC = "02:fa:00:00:00:02", src: MAC = "02:fa:00:00:00:01", ftag: UInt16 = 1, ttl: UInt8 = 32, fcs: Bool = false)
    /// Cisco HDLC (a LINKTYPE_PPP_HDLC frame starting 0F): address, control, EtherType.
    case ciscoHDLC(address: UInt8 = 0x0F, type: UInt16? = nil)
    /// NFLOG (LINKTYPE_NFLOG): the 4-byte header, a packet-header TLV, a prefix TLV and the
    /// payload TLV holding what follows; TLV lengths and types little-endian. nil family: 2
    /// (AF_INET) or 10 (AF_INET6) from the next layer.
    case nflog(family: UInt8? = nil, version: UInt8 = 0, resourceID: UInt16 = 0, prefix: String = "lb")
    /// FDDI (LINKTYPE_FDDI): frame control (0x50: asynchronous LLC), destination, source;
    /// `.llcSnap` follows for IP.
    case fddi(frameControl: UInt8 = 0x50, dst: MAC = .b, src: MAC = .a)
    /// An ARP packet for Ethernet/IPv4 (terminal).
    case arp(operation: UInt16 = 1, senderMAC: MAC = .a, senderIP: IPv4, targetMAC: MAC = MAC(0), targetIP: IPv4)
    /// Linux cooked capture v1 (LINKTYPE_LINUX_SLL).
    case sll(packetType: UInt16 = 0, address: MAC = .a, addressLength: UInt16 = 6, proto: UInt16? = nil)
    /// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2).
    case sll2(packetType: UInt8 = 0, address: MAC = .a, addressLength: UInt8 = 6, interface: UInt32 = 1, proto: UInt16? = nil)
    /// BSD loopback: a 4-byte address family, host (little-endian) order for LINKTYPE_NULL,
    /// network order for LINKTYPE_LOOP. nil family: 2 for IPv4, 30 for IPv6.
    case null(family: UInt32? = nil, networkOrder: Bool = false)
    /// Radiotap in front of an 802.11 frame. `fcs`: the frame ends with its FCS and the Flags
    /// field says so; `tsft`: a TSFT field precedes Flags (tests the 8-byte alignment).
    case radiotap(tsft: Bool = false, fcs: Bool = false, flags: UInt8 = 0, extraPresentWords: Int = 0)
    /// An 802.11 frame header.
    case wifi(WifiHeader)
    /// 802.11 A-MSDU subframes (terminal): follows a QoS data `.wifi`, which then gets the
    /// A-MSDU bit.
    case amsdu([AMSDUSubframe])

    // MARK: Network layers

    case ipv4(IPv4Header)
    case ipv6(IPv6Header)
    /// A finished IP packet (e.g. a fragment): its version nibble gives the EtherType.
    case ip([UInt8])

    // MARK: Transport

    case tcp(sport: UInt16, dport: UInt16, seq: UInt32 = 1, ack: UInt32 = 0, flags: TCPFlags = .ack,
             window: UInt16 = 65535, options: [UInt8] = [])
    /// UDP; `checksum: false` leaves the checksum 0 (allowed for IPv4).
    case udp(sport: UInt16, dport: UInt16, checksum: Bool = true)
    case sctp(sport: UInt16, dport: UInt16, tag: UInt32 = 1)
    /// ICMPv4: the following layers are the body (an echo payload, or the quoted packet of an
    /// error, cut to `quoteLimit` bytes when given).
    case icmp(type: UInt8, code: UInt8 = 0, rest: UInt32 = 0, quoteLimit: Int? = nil)
    /// ICMPv6 (checksum with the IPv6 pseudo-header).
    case icmp6(type: UInt8, code: UInt8 = 0, rest: UInt32 = 0, quoteLimit: Int? = nil)

    // MARK: Tunnels

    case vxlan(vni: UInt32, flags: UInt8 = 0x08)
    case geneve(vni: UInt32, options: [GeneveOption] = [], proto: UInt16? = nil, oam: Bool = false,
                critical: Bool = false, version: UInt8 = 0)
    /// GRE (RFC 2784/2890): a checksum (computed), key and sequence number when given;
    /// `routing` sets the R bit (not supported by the decoder); `version` 0.
    case gre(checksum: Bool = false, key: UInt32? = nil, seq: UInt32? = nil, routing: Bool = false,
             version: UInt8 = 0, proto: UInt16? = nil)
    /// PPTP's enhanced GRE (version 1, protocol 0x880B), followed by `.ppp`.
    case pptp(callID: UInt16, seq: UInt32? = nil, ack: UInt32? = nil)
    /// PPP inside PPTP: address/control FF 03 and a one- or two-byte protocol field.
    case ppp(proto: UInt16? = nil, addressControl: Bool = true, compressed: Bool = false)
    /// ERSPAN type I: no header; the GRE protocol becomes 0x88BE (use a GRE without sequence).
    case erspan1
    /// ERSPAN type II header (GRE 0x88BE, use a GRE with `seq`).
    case erspan2(session: UInt16, vlan: UInt16 = 0, cos: UInt8 = 0, index: UInt32 = 0)
    /// ERSPAN type III header (GRE 0x22EB); frame type from the next layer (0 Ethernet, 2 IP)
    /// unless given; `platform` adds the 8-byte platform-specific sub-header.
    case erspan3(session: UInt16, vlan: UInt16 = 0, timestamp: UInt32 = 0, hardwareID: UInt8 = 0,
                 frameType: UInt8? = nil, platform: Bool = false)
    case gtpu(GTPUHeader)
    /// Teredo: optional authentication and origin indication before the IPv6 packet.
    case teredo(auth: TeredoAuth? = nil, origin: TeredoOrigin? = nil)
    /// AYIYA: identity (length a power of two), signature (a multiple of 4 bytes).
    case ayiya(identity: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
               signature: [UInt8] = Array(repeating: 0, count: 20), opcode: UInt8 = 1, nextHeader: UInt8? = nil)

    // MARK: Payload

    case payload([UInt8])
    /// `count` bytes of a repeating pattern.
    case filler(Int)

    // MARK: Convenience constructors

    public static func ipv4(src: IPv4, dst: IPv4, proto: UInt8? = nil, id: UInt16 = 1, ttl: UInt8 = 64,
                            df: Bool = false, mf: Bool = false, fragmentOffset: Int = 0,
                            options: [UInt8] = []) -> Layer {
        .ipv4(IPv4Header(src: src, dst: dst, proto: proto, id: id, ttl: ttl, df: df, mf: mf,
                         fragmentOffset: fragmentOffset, options: options))
    }

    public static func ipv6(src: IPv6, dst: IPv6, nextHeader: UInt8? = nil, hopLimit: UInt8 = 64,
                            flowLabel: UInt32 = 0, ext: [IPv6Extension] = []) -> Layer {
        .ipv6(IPv6Header(src: src, dst: dst, nextHeader: nextHeader, hopLimit: hopLimit, flowLabel: flowLabel, ext: ext))
    }

    public static func icmpEcho(id: UInt16, seq: UInt16, reply: Bool = false) -> Layer {
        .icmp(type: reply ? 0 : 8, code: 0, rest: UInt32(id) << 16 | UInt32(seq))
    }

    public static func icmp6Echo(id: UInt16, seq: UInt16, reply: Bool = false) -> Layer {
        .icmp6(type: reply ? 129 : 128, code: 0, rest: UInt32(id) << 16 | UInt32(seq))
    }

    /// Destination unreachable (3/3 port unreachable by default) quoting the layers that follow.
    public static func icmpUnreachable(code: UInt8 = 3, quoteLimit: Int? = nil) -> Layer {
        .icmp(type: 3, code: code, quoteLimit: quoteLimit)
    }

    public static func gtpu(teid: UInt32, messageType: UInt8 = 0xFF, seq: UInt16? = nil, npdu: UInt8? = nil,
                            extensions: [GTPExtension] = []) -> Layer {
        .gtpu(GTPUHeader(teid: teid, messageType: messageType, seq: seq, npdu: npdu, extensions: extensions))
    }

    /// An 802.11 data frame from a station to its access point (To DS).
    public static func wifiData(toDS: Bool = true, fromDS: Bool = false, qos: Bool = true, sa: MAC = .a, da: MAC = .b,
                                bssid: MAC = "02:00:00:00:00:ff") -> Layer {
        .wifi(WifiHeader.data(toDS: toDS, fromDS: fromDS, qos: qos, sa: sa, da: da, bssid: bssid))
    }
}

/// TCP flags.
public struct TCPFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
}

public struct IPv4Header: Sendable {
    public var src: IPv4
    public var dst: IPv4
    /// nil: from the next layer
    public var proto: UInt8?
    public var id: UInt16
    public var ttl: UInt8
    public var tos: UInt8 = 0
    public var df: Bool
    public var mf: Bool
    /// byte offset of the payload in the datagram (a multiple of 8)
    public var fragmentOffset: Int
    /// option bytes, padded with zeros to a multiple of 4
    public var options: [UInt8]
    /// overrides the computed total length (for malformed packets)
    public var totalLength: Int? = nil

    public init(src: IPv4, dst: IPv4, proto: UInt8? = nil, id: UInt16 = 1, ttl: UInt8 = 64, df: Bool = false,
                mf: Bool = false, fragmentOffset: Int = 0, options: [UInt8] = []) {
        self.src = src; self.dst = dst; self.proto = proto; self.id = id; self.ttl = ttl
        self.df = df; self.mf = mf; self.fragmentOffset = fragmentOffset; self.options = options
    }
}

public struct IPv6Header: Sendable {
    public var src: IPv6
    public var dst: IPv6
    /// nil: the first extension header's type, or from the next layer
    public var nextHeader: UInt8?
    public var hopLimit: UInt8
    public var trafficClass: UInt8 = 0
    public var flowLabel: UInt32
    public var ext: [IPv6Extension]

    public init(src: IPv6, dst: IPv6, nextHeader: UInt8? = nil, hopLimit: UInt8 = 64, flowLabel: UInt32 = 0,
                ext: [IPv6Extension] = []) {
        self.src = src; self.dst = dst; self.nextHeader = nextHeader; self.hopLimit = hopLimit
        self.flowLabel = flowLabel; self.ext = ext
    }
}

/// An IPv6 extension header; each gets the right Next Header and length.
public enum IPv6Extension: Sendable {
    /// options: padded with PadN to a multiple of 8 (with the 2-byte header)
    case hopByHop(options: [UInt8] = [])
    case destination(options: [UInt8] = [])
    case routing(type: UInt8 = 4, segmentsLeft: UInt8 = 0, addresses: [IPv6] = [])
    /// `offset`: byte offset (a multiple of 8)
    case fragment(offset: Int, more: Bool, id: UInt32)
    /// authentication header with `icv` bytes of integrity check value (length in 4-byte units)
    case auth(spi: UInt32 = 0x100, icv: Int = 12)

    public var number: UInt8 {
        switch self {
        case .hopByHop: 0
        case .destination: 60
        case .routing: 43
        case .fragment: 44
        case .auth: 51
        }
    }
}

public struct GeneveOption: Sendable {
    public var optionClass: UInt16
    public var type: UInt8
    /// padded with zeros to a multiple of 4 bytes (at most 124)
    public var data: [UInt8]
    public init(optionClass: UInt16 = 0x0103, type: UInt8 = 0x80, data: [UInt8] = [0, 0, 0, 0]) {
        self.optionClass = optionClass; self.type = type; self.data = data
    }
}

public struct GTPUHeader: Sendable {
    public var teid: UInt32
    /// 0xFF: G-PDU (user data); others are signalling
    public var messageType: UInt8
    public var seq: UInt16?
    public var npdu: UInt8?
    public var extensions: [GTPExtension]
    public var version: UInt8 = 1
    public init(teid: UInt32, messageType: UInt8 = 0xFF, seq: UInt16? = nil, npdu: UInt8? = nil, extensions: [GTPExtension] = []) {
        self.teid = teid; self.messageType = messageType; self.seq = seq; self.npdu = npdu; self.extensions = extensions
    }
}

/// A GTP-U extension header: its content is padded to 4n - 2 bytes.
public struct GTPExtension: Sendable {
    public var type: UInt8
    public var content: [UInt8]
    public init(type: UInt8 = 0x85, content: [UInt8] = [0x00, 0x09]) { self.type = type; self.content = content }
}

public struct TeredoAuth: Sendable {
    public var clientID: [UInt8]
    public var authValue: [UInt8]
    public var nonce: UInt64
    public var confirmation: UInt8
    public init(clientID: [UInt8] = [], authValue: [UInt8] = [], nonce: UInt64 = 0x0102_0304_0506_0708, confirmation: UInt8 = 0) {
        self.clientID = clientID; self.authValue = authValue; self.nonce = nonce; self.confirmation = confirmation
    }
}

public struct TeredoOrigin: Sendable {
    public var port: UInt16
    public var address: IPv4
    public init(port: UInt16, address: IPv4) { self.port = port; self.address = address }
}

/// An 802.11 MAC header (data frames; other types by `type`/`subtype`).
public struct WifiHeader: Sendable {
    public var type: UInt8 = 2
    public var subtype: UInt8 = 8
    public var toDS: Bool
    public var fromDS: Bool
    public var protected = false
    /// HT control field present (order bit, in QoS frames)
    public var htControl = false
    public var addr1: MAC
    public var addr2: MAC
    public var addr3: MAC
    public var addr4: MAC? = nil
    /// A-MSDU present bit in the QoS control; set automatically before `.amsdu`
    public var amsdu = false
    public var tid: UInt8 = 0

    public init(type: UInt8 = 2, subtype: UInt8 = 8, toDS: Bool, fromDS: Bool, addr1: MAC, addr2: MAC, addr3: MAC,
                addr4: MAC? = nil) {
        self.type = type; self.subtype = subtype; self.toDS = toDS; self.fromDS = fromDS
        self.addr1 = addr1; self.addr2 = addr2; self.addr3 = addr3; self.addr4 = addr4
    }

    public var isQoS: Bool { type == 2 && subtype & 0x8 != 0 }

    /// A data frame with the addresses placed as the DS bits require.
    public static func data(toDS: Bool, fromDS: Bool, qos: Bool, sa: MAC, da: MAC, bssid: MAC) -> WifiHeader {
        let subtype: UInt8 = qos ? 8 : 0
        switch (toDS, fromDS) {
        case (false, false):
            return WifiHeader(subtype: subtype, toDS: false, fromDS: false, addr1: da, addr2: sa, addr3: bssid)
        case (true, false):
            return WifiHeader(subtype: subtype, toDS: true, fromDS: false, addr1: bssid, addr2: sa, addr3: da)
        case (false, true):
            return WifiHeader(subtype: subtype, toDS: false, fromDS: true, addr1: da, addr2: bssid, addr3: sa)
        case (true, true):
            return WifiHeader(subtype: subtype, toDS: true, fromDS: true, addr1: bssid, addr2: "02:00:00:00:00:fe",
                              addr3: da, addr4: sa)
        }
    }
}

/// One A-MSDU subframe: DA, SA, length, then an LLC/SNAP header and the packet.
public struct AMSDUSubframe: Sendable {
    public var da: MAC
    public var sa: MAC
    /// the subframe's payload after LLC/SNAP (e.g. an IP packet)
    public var packet: [UInt8]
    public var etherType: UInt16
    /// false: `packet` is the whole subframe payload, without LLC/SNAP
    public var llcSnap: Bool
    public init(da: MAC = .b, sa: MAC = .a, packet: [UInt8], etherType: UInt16? = nil, llcSnap: Bool = true) {
        self.da = da; self.sa = sa; self.packet = packet; self.llcSnap = llcSnap
        self.etherType = etherType ?? (packet.first.map { $0 >> 4 == 6 ? 0x86DD : 0x0800 } ?? 0x0800)
    }
}
