// The UDP ingress (`-i udp::ADDR:PORT[:ENCAP][:dlt=LINK]`, the grammar of Zeek's UDP packet
// source): the interface string, the validation of a datagram's payload, and the outer
// Ethernet/IP/UDP header lb writes in front of a valid datagram so that it is decoded and
// hashed exactly as the same packet arriving as a whole frame (a capture, AF_PACKET, AF_XDP).
// Pure: no syscalls, no Foundation.

/// What a datagram's payload starts with.
public enum DatagramEncap: Equatable, Sendable {
    /// a VXLAN header, then Ethernet (AWS Traffic Mirroring)
    case vxlan
    /// a GENEVE header, then what its protocol type says: Ethernet, IPv4 or IPv6 (GCP)
    case geneve
    /// GENEVE carrying IPv4/IPv6 + UDP + VXLAN + Ethernet (AWS Gateway Load Balancer)
    case geneveVXLAN
    /// N bytes to skip, then a packet of link type `dlt` (`raw` is `skip=0`)
    case skip(Int)

    public var name: String {
        switch self {
        case .vxlan: "vxlan"
        case .geneve: "geneve"
        case .geneveVXLAN: "geneve+vxlan"
        case .skip(0): "raw"
        case .skip(let n): "skip=\(n)"
        }
    }

    /// The tunnel the listening port carries, for the decoder's port table.
    public var tunnelKind: EncapKind? {
        switch self {
        case .vxlan: .vxlan
        case .geneve, .geneveVXLAN: .geneve
        case .skip: nil
        }
    }
}

/// A parsed `udp::` interface: where to listen and what the datagrams carry.
public struct DatagramSpec: Equatable, Sendable {
    /// the address as written (without brackets): numeric IPv4 or IPv6
    public var address: String
    public var isIPv6: Bool
    /// the address in network order: 4 or 16 bytes
    public var addressBytes: [UInt8]
    public var port: UInt16
    public var encap: DatagramEncap
    /// the link type of the packet after the encapsulation (`dlt=`): en10mb, raw or ppp
    public var linkType: UInt32

    public init(address: String, isIPv6: Bool, addressBytes: [UInt8], port: UInt16, encap: DatagramEncap, linkType: UInt32) {
        self.address = address
        self.isIPv6 = isIPv6
        self.addressBytes = addressBytes
        self.port = port
        self.encap = encap
        self.linkType = linkType
    }

    public static let linkTypes: [(String, UInt32)] = [("en10mb", 1), ("raw", 101), ("ppp", 9)]

    /// The string that would parse to this spec.
    public var description: String {
        let a = isIPv6 ? "[\(address)]" : address
        let dlt = DatagramSpec.linkTypes.first { $0.1 == linkType }?.0 ?? "en10mb"
        return "udp::\(a):\(port):\(encap.name)" + (linkType == 1 ? "" : ":dlt=\(dlt)")
    }

    /// Parses `udp::ADDR:PORT[:OPTION]...` (Zeek's grammar): ADDR a numeric IPv4 address or an
    /// IPv6 address in brackets; PORT 1..65535; options, colon-separated, lowercase: at most
    /// one encapsulation (`vxlan`, the default; `geneve`; `geneve+vxlan`; `raw`; `skip=N`) and
    /// at most one `dlt=` (`en10mb`, the default; `raw`; `ppp`).
    public static func parse(_ text: String) throws(DatagramSpecError) -> DatagramSpec {
        guard text.hasPrefix("udp::") else { throw DatagramSpecError("\(text): an UDP input starts with udp::") }
        var rest = Substring(text.dropFirst(5))
        let address: String
        let isV6: Bool
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw DatagramSpecError("\(text): missing ] after the IPv6 address") }
            address = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            isV6 = true
        } else {
            guard let colon = rest.firstIndex(of: ":") else { throw DatagramSpecError("\(text): missing port (udp::ADDR:PORT)") }
            address = String(rest[..<colon])
            rest = rest[colon...]
            isV6 = false
        }
        guard let bytes = isV6 ? parseIPv6(address) : parseIPv4(address) else {
            throw DatagramSpecError("\(text): invalid \(isV6 ? "IPv6" : "IPv4") address '\(address)' (numeric, IPv6 in brackets)")
        }
        guard rest.hasPrefix(":") else { throw DatagramSpecError("\(text): missing port (udp::ADDR:PORT)") }
        let fields = rest.dropFirst().split(separator: ":", omittingEmptySubsequences: false)
        guard let portText = fields.first, !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              portText.count <= 5, let port = Int(portText), port >= 1, port <= 65535 else {
            throw DatagramSpecError("\(text): invalid port '\(fields.first ?? "")' (1 to 65535)")
        }
        var encap: DatagramEncap? = nil
        var link: UInt32? = nil
        for option in fields.dropFirst() {
            var e: DatagramEncap? = nil
            switch option {
            case "vxlan": e = .vxlan
            case "geneve": e = .geneve
            case "geneve+vxlan": e = .geneveVXLAN
            case "raw": e = .skip(0)
            default:
                if option.hasPrefix("skip=") {
                    let n = option.dropFirst(5)
                    guard !n.isEmpty, n.count <= 5, n.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(n), v <= 65535 else {
                        throw DatagramSpecError("\(text): invalid option '\(option)' (skip=N, N decimal, at most 65535)")
                    }
                    e = .skip(v)
                } else if option.hasPrefix("dlt=") {
                    guard link == nil else { throw DatagramSpecError("\(text): dlt already set") }
                    guard let l = linkTypes.first(where: { $0.0 == option.dropFirst(4) }) else {
                        throw DatagramSpecError("\(text): invalid option '\(option)' (dlt=en10mb, dlt=raw or dlt=ppp)")
                    }
                    link = l.1
                    continue
                } else {
                    throw DatagramSpecError("\(text): invalid option '\(option)' (vxlan, geneve, geneve+vxlan, raw, skip=N, dlt=LINK)")
                }
            }
            guard encap == nil else { throw DatagramSpecError("\(text): encapsulation already set") }
            encap = e
        }
        let spec = DatagramSpec(address: address, isIPv6: isV6, addressBytes: bytes, port: UInt16(port),
                                encap: encap ?? .vxlan, linkType: link ?? 1)
        // VXLAN carries Ethernet (RFC 7348), and so does the VXLAN inside geneve+vxlan; GENEVE
        // says what it carries in its protocol type, which lb reads (dlt= is then only checked).
        if spec.linkType != 1 {
            switch spec.encap {
            case .vxlan, .geneveVXLAN:
                throw DatagramSpecError("\(text): lb reads VXLAN payloads as Ethernet (dlt=en10mb); use raw or skip=N for other layouts")
            case .geneve, .skip: break
            }
        }
        return spec
    }

    static func parseIPv4(_ s: String) -> [UInt8]? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(p), v <= 255 else { return nil }
            out.append(UInt8(v))
        }
        return out
    }

    static func parseIPv6(_ s: String) -> [UInt8]? {
        guard !s.isEmpty, s.count <= 45 else { return nil }
        var head: [UInt16] = [], tail: [UInt16] = []
        var sawGap = false
        let halves = splitAtDoubleColons(s)
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring, last: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, f) in fields.enumerated() {
                if last && i == fields.count - 1 && f.contains(".") {
                    guard let b = parseIPv4(String(f)) else { return nil }
                    out.append(UInt16(b[0]) << 8 | UInt16(b[1]))
                    out.append(UInt16(b[2]) << 8 | UInt16(b[3]))
                    continue
                }
                guard !f.isEmpty, f.count <= 4, let v = UInt16(f, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        if halves.count == 2 {
            sawGap = true
            guard let h = groups(halves[0], last: false), let t = groups(halves[1], last: true) else { return nil }
            head = h; tail = t
            guard head.count + tail.count <= 7 else { return nil }
        } else {
            guard let h = groups(halves[0], last: true), h.count == 8 else { return nil }
            head = h
        }
        let all = sawGap ? head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail : head
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}

/// Splits at every "::" (IPv6 zero compression): a valid address has at most one.
private func splitAtDoubleColons(_ s: String) -> [Substring] {
    var parts: [Substring] = []
    var start = s.startIndex
    var i = s.startIndex
    while i < s.endIndex {
        let n = s.index(after: i)
        if s[i] == ":" && n < s.endIndex && s[n] == ":" {
            parts.append(s[start..<i])
            start = s.index(after: n)
            i = start
            continue
        }
        i = n
    }
    parts.append(s[start..<s.endIndex])
    return parts
}

public struct DatagramSpecError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Why a datagram was rejected. A rejected datagram never reaches a ring: it is dropped and
/// counted under its reason.
public enum DatagramReject: UInt8, CaseIterable, Sendable {
    case none = 0
    /// shorter than the encapsulation header (or than skip=N)
    case short
    /// VXLAN: the I flag (0x08 in the first byte) is not set
    case vxlanNoIFlag
    /// VXLAN: a reserved bit or byte is not zero (RFC 7348; what the Linux driver and
    /// Suricata's strict mode check)
    case vxlanReserved
    /// GENEVE: version is not 0
    case geneveVersion
    /// GENEVE: the option length runs past the end of the datagram
    case geneveOptionLength
    /// GENEVE: the options do not exactly fill the option area
    case geneveOptions
    /// GENEVE: the C bit says a critical option is present; lb understands none (RFC 8926:
    /// drop)
    case geneveCritical
    /// GENEVE: a protocol type other than Ethernet (0x6558), IPv4 or IPv6; for
    /// geneve+vxlan other than IPv4 or IPv6
    case geneveProtocol
    /// geneve+vxlan: the inner IP header is short or bad, not UDP, or the UDP datagram is not
    /// to a VXLAN port
    case geneveInnerIP
    /// larger than the receive buffer (cut by the kernel, MSG_TRUNC)
    case tooLong
    /// dlt=ppp: not an IPv4 or IPv6 packet (LCP, IPCP, ... or no protocol field)
    case pppNotIP

    public var name: String {
        switch self {
        case .none: "none"
        case .short: "short"
        case .vxlanNoIFlag: "vxlan_no_i_flag"
        case .vxlanReserved: "vxlan_reserved_bits"
        case .geneveVersion: "geneve_version"
        case .geneveOptionLength: "geneve_option_length"
        case .geneveOptions: "geneve_options"
        case .geneveCritical: "geneve_critical_option"
        case .geneveProtocol: "geneve_protocol"
        case .geneveInnerIP: "geneve_inner_ip"
        case .tooLong: "too_long"
        case .pppNotIP: "ppp_not_ip"
        }
    }
}

/// The result of checking one datagram's payload.
@frozen
public struct DatagramCheck: Equatable, Sendable {
    public var reject: DatagramReject = .none
    /// the outermost VNI (VXLAN or GENEVE), for the per-VNI stats
    public var vni: UInt32 = 0
    public var hasVNI = false
    @inlinable public init() {}
}

extension DatagramEncap {
    /// Checks a datagram's payload: the encapsulation header(s), every length inside the
    /// datagram. `isVXLANPort` says whether a UDP destination port carries VXLAN (for the
    /// VXLAN inside geneve+vxlan).
    @inlinable
    public func check(_ p: UnsafeRawBufferPointer, isVXLANPort: (UInt16) -> Bool) -> DatagramCheck {
        var r = DatagramCheck()
        switch self {
        case .vxlan:
            r.reject = DatagramEncap.checkVXLAN(p, 0, &r)
        case .geneve, .geneveVXLAN:
            let n = p.count
            guard n >= 8 else { r.reject = .short; return r }
            let b0 = p.load(fromByteOffset: 0, as: UInt8.self)
            let b1 = p.load(fromByteOffset: 1, as: UInt8.self)
            guard b0 >> 6 == 0 else { r.reject = .geneveVersion; return r }
            r.vni = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) >> 8
            r.hasVNI = true
            let optLen = Int(b0 & 0x3F) &* 4
            guard n - 8 >= optLen else { r.reject = .geneveOptionLength; return r }
            var o = 8
            let optEnd = 8 + optLen
            while o < optEnd {
                guard optEnd - o >= 4 else { r.reject = .geneveOptions; return r }
                o += 4 + Int(p.load(fromByteOffset: o + 3, as: UInt8.self) & 0x1F) &* 4
            }
            guard o == optEnd else { r.reject = .geneveOptions; return r }
            guard b1 & 0x40 == 0 else { r.reject = .geneveCritical; return r }
            let proto = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            if case .geneve = self {
                guard proto == 0x6558 || proto == 0x0800 || proto == 0x86DD else { r.reject = .geneveProtocol; return r }
                return r
            }
            guard proto == 0x0800 || proto == 0x86DD else { r.reject = .geneveProtocol; return r }
            // the IP packet inside: IPv4 or IPv6 (its length within the datagram, not a
            // fragment), UDP to a VXLAN port (its length within the IP packet), a valid VXLAN header
            let ip = optEnd
            let udp: Int
            var end: Int
            if proto == 0x0800 {
                guard n - ip >= 20 else { r.reject = .geneveInnerIP; return r }
                let v = p.load(fromByteOffset: ip, as: UInt8.self)
                let ihl = Int(v & 0x0F) &* 4
                let total = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: ip + 2, as: UInt16.self)))
                guard v >> 4 == 4, ihl >= 20, total >= ihl + 8, total <= n - ip,
                      p.load(fromByteOffset: ip + 9, as: UInt8.self) == 17,
                      UInt16(bigEndian: p.loadUnaligned(fromByteOffset: ip + 6, as: UInt16.self)) & 0x3FFF == 0
                else { r.reject = .geneveInnerIP; return r }
                udp = ip + ihl
                end = ip + total
            } else {
                guard n - ip >= 40, p.load(fromByteOffset: ip, as: UInt8.self) >> 4 == 6,
                      p.load(fromByteOffset: ip + 6, as: UInt8.self) == 17 else { r.reject = .geneveInnerIP; return r }
                let payload = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: ip + 4, as: UInt16.self)))
                guard payload >= 8, payload <= n - ip - 40 else { r.reject = .geneveInnerIP; return r }
                udp = ip + 40
                end = udp + payload
            }
            let udpLength = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: udp + 4, as: UInt16.self)))
            let dport = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: udp + 2, as: UInt16.self))
            guard udpLength >= 8, udpLength <= end - udp, isVXLANPort(dport) else { r.reject = .geneveInnerIP; return r }
            end = udp + udpLength
            var inner = DatagramCheck()
            let v = DatagramEncap.checkVXLAN(UnsafeRawBufferPointer(rebasing: p[..<end]), udp + 8, &inner)
            if v != .none { r.reject = v }
            return r
        case .skip(let k):
            if p.count < k { r.reject = .short }
            return r
        }
        return r
    }

    @inlinable
    static func checkVXLAN(_ p: UnsafeRawBufferPointer, _ at: Int, _ r: inout DatagramCheck) -> DatagramReject {
        guard p.count - at >= 8 else { return .short }
        let w0 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: at, as: UInt32.self))
        let w1 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self))
        r.vni = w1 >> 8
        r.hasVNI = true
        guard w0 & 0x0800_0000 != 0 else { return .vxlanNoIFlag }
        guard w0 == 0x0800_0000, w1 & 0xFF == 0 else { return .vxlanReserved }
        return .none
    }
}

/// PPP (`dlt=ppp`): the HDLC address and control bytes (FF 03) if present, then the protocol
/// field (one byte when compressed, that is odd). Returns where the IP packet starts, or nil when
/// the frame is not IPv4 (0x0021) or IPv6 (0x0057).
@inlinable
public func pppIPStart(_ p: UnsafeRawBufferPointer, at start: Int) -> Int? {
    var o = start
    guard p.count - o >= 1 else { return nil }
    if p.count - o >= 2 && p.load(fromByteOffset: o, as: UInt8.self) == 0xFF && p.load(fromByteOffset: o + 1, as: UInt8.self) == 0x03 {
        o += 2
    }
    guard p.count - o >= 1 else { return nil }
    var proto = UInt16(p.load(fromByteOffset: o, as: UInt8.self))
    if proto & 1 == 1 {
        o += 1
    } else {
        guard p.count - o >= 2 else { return nil }
        proto = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self))
        o += 2
    }
    return proto == 0x0021 || proto == 0x0057 ? o : nil
}

/// Writes the outer headers (Ethernet, IPv4 or IPv6, UDP) of a datagram in front of its
/// payload, so that the decoder sees the frame the datagram arrived in.
public enum OuterHeader {
    /// bytes of the outer headers: 14 + 20 + 8 or 14 + 40 + 8
    @inlinable
    public static func length(ipv6: Bool) -> Int { ipv6 ? 62 : 42 }

    /// Writes the headers into `p[0..<length(ipv6:)]`; the payload of `payloadLength` bytes
    /// follows them. Addresses are 16 bytes each (IPv4 in the first 4 bytes), ports in host
    /// order.
    @inlinable
    public static func write(_ p: UnsafeMutableRawPointer, ipv6: Bool, src: UnsafeRawPointer, dst: UnsafeRawPointer,
                             sport: UInt16, dport: UInt16, payloadLength: Int) {
        // Ethernet: locally administered MACs, so a reader sees they are synthesized
        p.storeBytes(of: UInt64(0x0200_0000_0002_0200).bigEndian, toByteOffset: 0, as: UInt64.self)  // dst 02:00:00:00:00:02
        p.storeBytes(of: UInt32(0x0000_0001).bigEndian, toByteOffset: 8, as: UInt32.self)   // src 02:00:00:00:00:01
        p.storeBytes(of: (ipv6 ? UInt16(0x86DD) : 0x0800).bigEndian, toByteOffset: 12, as: UInt16.self)
        let ip = p + 14
        let udp: UnsafeMutableRawPointer
        let udpLength = payloadLength &+ 8
        if ipv6 {
            ip.storeBytes(of: UInt32(0x6000_0000).bigEndian, toByteOffset: 0, as: UInt32.self)
            ip.storeBytes(of: UInt16(truncatingIfNeeded: udpLength).bigEndian, toByteOffset: 4, as: UInt16.self)
            ip.storeBytes(of: UInt8(17), toByteOffset: 6, as: UInt8.self)
            ip.storeBytes(of: UInt8(64), toByteOffset: 7, as: UInt8.self)
            (ip + 8).copyMemory(from: src, byteCount: 16)
            (ip + 24).copyMemory(from: dst, byteCount: 16)
            udp = ip + 40
        } else {
            let total = UInt16(truncatingIfNeeded: udpLength &+ 20)
            ip.storeBytes(of: UInt16(0x4500).bigEndian, toByteOffset: 0, as: UInt16.self)
            ip.storeBytes(of: total.bigEndian, toByteOffset: 2, as: UInt16.self)
            ip.storeBytes(of: UInt32(0).bigEndian, toByteOffset: 4, as: UInt32.self)     // id, flags, fragment offset
            ip.storeBytes(of: UInt16(0x4011).bigEndian, toByteOffset: 8, as: UInt16.self)   // TTL 64, UDP
            ip.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
            (ip + 12).copyMemory(from: src, byteCount: 4)
            (ip + 16).copyMemory(from: dst, byteCount: 4)
            var sum: UInt32 = 0
            for i in stride(from: 0, to: 20, by: 2) {
                sum &+= UInt32(UInt16(bigEndian: UnsafeRawPointer(ip).loadUnaligned(fromByteOffset: i, as: UInt16.self)))
            }
            sum = (sum & 0xFFFF) &+ (sum >> 16)
            sum = (sum & 0xFFFF) &+ (sum >> 16)
            ip.storeBytes(of: (~UInt16(truncatingIfNeeded: sum)).bigEndian, toByteOffset: 10, as: UInt16.self)
            udp = ip + 20
        }
        udp.storeBytes(of: sport.bigEndian, toByteOffset: 0, as: UInt16.self)
        udp.storeBytes(of: dport.bigEndian, toByteOffset: 2, as: UInt16.self)
        udp.storeBytes(of: UInt16(truncatingIfNeeded: udpLength).bigEndian, toByteOffset: 4, as: UInt16.self)
        udp.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)   // no checksum
    }
}
