import LBCore
import LBGen
import Testing

// One frame per ParseError the decoder can report, and the list of those it cannot: a new
// case fails this test until it gets a frame here (the detailed checks are in the topic files).

@Suite("Decoder: every parse error")
struct DecoderErrorCatalogueTests {
    /// Cases no frame can produce: `LinkType` has no unknown value (an unknown LINKTYPE_ fails
    /// `LinkType(linktype:)` before decoding), and the decoder never sets the other two: PPP
    /// control traffic is delivered as its outer flow without an error, and a truncated inner
    /// packet reports the inner header's own truncation reason.
    static let unreachable: Set<ParseError> = [.none, .unknownLinkType]

    static func sample(_ e: ParseError) -> (LinkType, [UInt8])? {
        let greIP: [Layer] = [.ethernet(), .ipv4(src: Addr.o4, dst: Addr.t4, proto: 47)]
        let udp = { (port: UInt16) -> [Layer] in outer4 + [.udp(sport: 40000, dport: port)] }
        switch e {
        case .none, .unknownLinkType: return nil
        case .truncatedLink: return (.ethernet, [1, 2, 3])
        case .tooManyTags: return (.ethernet, build([.ethernet()] + Array(repeating: Layer.vlan(id: 1), count: 9) + inner4))
        case .badIPVersion: return (.raw, [0x55, 0, 0, 0])
        case .truncatedIPv4: return (.raw, Array(build(inner4).prefix(19)))
        case .badIPv4Header: return (.raw, [0x44] + Array(build(inner4).dropFirst()))
        case .truncatedIPv6: return (.raw, Array(build(inner6).prefix(39)))
        case .badIPv6Header: return (.ethernet, build([.ethernet(type: 0x86DD)] + inner4))
        case .tooManyExtensionHeaders:
            return (.raw, build(.ipv6(src: Addr.c6, dst: Addr.s6, ext: Array(repeating: .destination(), count: 17)), .udp(sport: 1, dport: 2)))
        case .truncatedL4: return (.raw, Array(build(inner4).prefix(22)))
        case .badICMPQuote: return (.raw, build(.ipv4(src: Addr.s4, dst: Addr.c4), .icmpUnreachable(), .filler(4)))
        case .vxlanBadFlags: return (.ethernet, build(udp(4789) + [.vxlan(vni: 1, flags: 0), .ethernet()] + inner4))
        case .vxlanTruncated: return (.ethernet, build(udp(4789) + [.payload([8, 0])]))
        case .geneveBadVersion: return (.ethernet, build(udp(6081) + [.geneve(vni: 1, version: 2), .ethernet()] + inner4))
        case .geneveBadOptions: return (.ethernet, build(udp(6081) + [.geneve(vni: 1), .payload([0x3F])]).enumerated().map { $0.offset == 42 ? 0x3F : $0.element })
        case .geneveBadProtocol: return (.ethernet, build(udp(6081) + [.geneve(vni: 1, proto: 0x0806), .filler(28)]))
        case .geneveTruncated: return (.ethernet, build(udp(6081) + [.payload([0, 0, 0x65])]))
        case .greBadVersion: return (.ethernet, build(outer4 + [.gre(version: 5)] + inner4))
        case .greRouting: return (.ethernet, build(outer4 + [.gre(routing: true)] + inner4))
        case .greUnknownProtocol: return (.ethernet, build(outer4 + [.gre(proto: 0x0101), .filler(8)]))
        case .greTruncated: return (.ethernet, build(greIP + [.payload([0x20, 0, 8, 0])]))
        case .erspanBadHeader: return (.ethernet, build(outer4 + [.gre(seq: 1), .erspan3(session: 1, frameType: 9), .ethernet()] + inner4))
        case .gtpBadHeader: return (.ethernet, build(udp(2152) + [.payload([0x50, 0xFF, 0, 0, 0, 0, 0, 1])]))
        case .gtpBadPayload: return (.ethernet, build(udp(2152) + [.gtpu(teid: 1), .payload([0x70])]))
        case .ayiyaBadHeader: return (.ethernet, build(udp(5072) + [.ayiya(nextHeader: 6), .filler(20)]))
        case .wifiUnsupported:
            return (.ieee80211, build(.wifiData(), .amsdu(Array(repeating: AMSDUSubframe(packet: [1], llcSnap: false), count: 65))))
        case .tunnelTooDeep: return (.ethernet, build([.ethernet()] + Array(repeating: Layer.ipv4(src: Addr.o4, dst: Addr.t4), count: 9) + inner4))
        case .nflogBadHeader: return (.nflog, build([.nflog(version: 1)] + inner4))
        case .nflogNoPayload: return (.nflog, [2, 0, 0, 0])
        case .tooManyLayers:   // Ethernet pseudowires in MPLS add no tunnel level, only steps
            let pw: [Layer] = [.ethernet(type: 0x8847), .mpls(labels: [16], controlWord: true)]
            return (.ethernet, build(Array(Array(repeating: pw, count: 400).joined()) + [.ethernet()] + inner4))
        }
    }

    @Test(arguments: ParseError.allCases.filter { !unreachable.contains($0) })
    func producedByAFrame(error: ParseError) throws {
        let (link, f) = try #require(Self.sample(error), "no sample for \(error)")
        var d = decodeFrame(f, link: link)
        if error == .wifiUnsupported { d = decodeFrame(f, link: link, subframe: 64) }
        #expect(d.error == error, "\(error.name): got \(d.error.name)")
        #expect(d.start >= 0 && d.start <= d.end && d.end <= f.count)
    }

    @Test func unreachableCasesHaveNoSample() {
        for e in Self.unreachable { #expect(Self.sample(e) == nil) }
        #expect(Set(ParseError.allCases.map(\.name)).count == ParseError.allCases.count)   // names are distinct
    }
}
