// Enumerations shared by the decoder, the dispatcher and the stats.
// Raw values of EncapKind match LB_ENCAP_* in lb_ring.h.

/// A tunnel that the decoder can remove.
public enum EncapKind: UInt8, CaseIterable, Sendable {
    case none = 0
    case vxlan = 1
    case geneve = 2
    case gre = 3
    case erspan = 4
    case ipip = 5
    case gtpu = 6
    case teredo = 7
    case ayiya = 8
    case pptp = 9
    case aruba = 10
    case greUDP = 11

    /// The name used in stats and on the command line.
    public var name: String {
        switch self {
        case .none: "none"
        case .vxlan: "vxlan"
        case .geneve: "geneve"
        case .gre: "gre"
        case .erspan: "erspan"
        case .ipip: "ipip"
        case .gtpu: "gtpu"
        case .teredo: "teredo"
        case .ayiya: "ayiya"
        case .pptp: "pptp"
        case .aruba: "aruba"
        case .greUDP: "gre_udp"
        }
    }
}

/// Why a packet did not parse completely. Such packets are still delivered, hashed on the
/// deepest flow that could be read, and counted under this reason.
public enum ParseError: UInt8, CaseIterable, Sendable {
    case none = 0
    case truncatedLink
    case unknownLinkType
    case tooManyTags
    case badIPVersion
    case truncatedIPv4
    case badIPv4Header
    case truncatedIPv6
    case badIPv6Header
    case tooManyExtensionHeaders
    case truncatedL4
    case badICMPQuote
    case vxlanBadFlags
    case vxlanTruncated
    case geneveBadVersion
    case geneveBadOptions
    case geneveBadProtocol
    case geneveTruncated
    case greBadVersion
    case greRouting
    case greUnknownProtocol
    case greTruncated
    case erspanBadHeader
    case gtpBadHeader
    case gtpBadPayload
    case ayiyaBadHeader
    case wifiUnsupported
    case tunnelTooDeep
    case tooManyLayers
    case nflogBadHeader
    case nflogNoPayload

    public var name: String {
        switch self {
        case .none: "none"
        case .truncatedLink: "truncated_link"
        case .unknownLinkType: "unknown_link_type"
        case .tooManyTags: "too_many_tags"
        case .badIPVersion: "bad_ip_version"
        case .truncatedIPv4: "truncated_ipv4"
        case .badIPv4Header: "bad_ipv4_header"
        case .truncatedIPv6: "truncated_ipv6"
        case .badIPv6Header: "bad_ipv6_header"
        case .tooManyExtensionHeaders: "too_many_ipv6_extension_headers"
        case .truncatedL4: "truncated_l4"
        case .badICMPQuote: "bad_icmp_quote"
        case .vxlanBadFlags: "vxlan_bad_flags"
        case .vxlanTruncated: "vxlan_truncated"
        case .geneveBadVersion: "geneve_bad_version"
        case .geneveBadOptions: "geneve_bad_options"
        case .geneveBadProtocol: "geneve_bad_protocol"
        case .geneveTruncated: "geneve_truncated"
        case .greBadVersion: "gre_bad_version"
        case .greRouting: "gre_routing_unsupported"
        case .greUnknownProtocol: "gre_unknown_protocol"
        case .greTruncated: "gre_truncated"
        case .erspanBadHeader: "erspan_bad_header"
        case .gtpBadHeader: "gtp_bad_header"
        case .gtpBadPayload: "gtp_bad_payload"
        case .ayiyaBadHeader: "ayiya_bad_header"
        case .wifiUnsupported: "wifi_unsupported_frame"
        case .tunnelTooDeep: "tunnel_too_deep"
        case .tooManyLayers: "too_many_layers"
        case .nflogBadHeader: "nflog_bad_header"
        case .nflogNoPayload: "nflog_no_payload"
        }
    }
}

/// Link types of capture files and sockets (LINKTYPE_* values from pcap-linktype(7)).
public enum LinkType: UInt32, Sendable {
    case null = 0
    case ethernet = 1
    case ppp = 9
    case fddi = 10
    /// PPP in HDLC-like framing (RFC 1662), or Cisco HDLC
    case pppHDLC = 50
    case raw = 101
    case ieee80211 = 105
    case loop = 108
    case linuxSLL = 113
    case radiotap = 127
    case ipv4 = 228
    case ipv6 = 229
    case nflog = 239
    case linuxSLL2 = 276

    /// Accepts the LINKTYPE_ value and the platform DLT_ aliases seen in the wild.
    public init?(linktype: UInt32) {
        switch linktype {
        case 12, 14: self = .raw          // DLT_RAW on OpenBSD / other BSDs
        default: self.init(rawValue: linktype)
        }
    }
}

/// How much of the flow the hash covers.
public enum TupleMode: UInt8, Sendable {
    /// addresses, protocol and ports (the default)
    case five = 5
    /// addresses and protocol
    case three = 3
    /// addresses only
    case two = 2
}
