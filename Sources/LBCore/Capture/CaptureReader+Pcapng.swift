// pcapng: a sequence of blocks (type, total length, body, total length again), each section
// opened by a Section Header Block whose byte-order magic sets the section's endianness.

/// Block types and option codes used by the reader.
enum Pcapng {
    static let shbType: UInt32 = 0x0A0D_0D0A
    static let idbType: UInt32 = 1
    static let packetBlockType: UInt32 = 2  // obsolete Packet Block
    static let spbType: UInt32 = 3
    static let epbType: UInt32 = 6
    static let byteOrderMagic: UInt32 = 0x1A2B_3C4D
    static let optEnd: UInt16 = 0
    static let optTsresol: UInt16 = 9
    static let optTsoffset: UInt16 = 14
}

/// What the reader keeps about one pcapng interface.
struct PcapngInterface {
    var linkType: UInt32
    var snaplen: UInt32
    /// Timestamp units per second (10^6 unless `if_tsresol` says otherwise).
    var unitsPerSecond: UInt64 = 1_000_000
    /// Seconds added to every timestamp (`if_tsoffset`).
    var offsetSeconds: UInt64 = 0

    /// Converts a raw timestamp to nanoseconds since the epoch (as libpcap: whole seconds, then
    /// the fraction scaled down and truncated). Wraps instead of trapping on hostile values.
    func nanos(_ ts: UInt64) -> UInt64 {
        let units = unitsPerSecond
        let sec = ts / units, frac = ts % units
        let fracNs: UInt64
        if units == 1_000_000 {
            fracNs = frac &* 1000
        } else if units <= 1_000_000_000 && 1_000_000_000 % units == 0 {
            fracNs = frac &* (1_000_000_000 / units)
        } else {
            // frac < units, so the quotient is below 10^9 and cannot overflow.
            fracNs = units.dividingFullWidth(frac.multipliedFullWidth(by: 1_000_000_000)).quotient
        }
        return (sec &+ offsetSeconds) &* 1_000_000_000 &+ fracNs
    }
}

extension CaptureReader {
    static func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }

    /// Reads the first Section Header Block.
    mutating func openPcapng() throws(CaptureError) {
        guard bytes.count >= 12 else { throw .tooShort }
        if let problem = readBlockHeader(at: 0) {
            throw problem.need > 0 ? .tooShort : .badHeader(problem.message)
        }
        let len = Int(u32(4))
        if len >= 28, u16(12) != 1 { throw .unsupportedVersion(major: u16(12), minor: u16(14)) }
        if let problem = readSectionHeader(at: 0, length: len) { throw .badHeader(problem) }
        offset = len
    }

    mutating func nextPcapng() -> CapturedPacket? {
        // Each pass consumes a whole block of at least 12 bytes, so the loop ends.
        while true {
            let at = offset
            let left = bytes.count - at
            if left == 0 { return short(nil, need: 12) }
            if let problem = readBlockHeader(at: at) {
                return problem.need > 0 ? short(problem.message, need: problem.need) : stop(problem.message)
            }
            let type = u32(at), len = Int(u32(at + 4))
            offset = at + len
            let body = at + 8, bodyLen = len - 12
            switch type {
            case Pcapng.shbType:
                if let problem = readSectionHeader(at: at, length: len) { return stop(problem) }
            case Pcapng.idbType:
                if let problem = readInterface(at: at, body: body, bodyLen: bodyLen) { return stop(problem) }
            case Pcapng.epbType, Pcapng.packetBlockType:
                guard bodyLen >= 20 else {
                    return stop("packet block at offset \(base + at) too short: length \(len)")
                }
                let ifid = type == Pcapng.epbType ? Int(u32(body)) : Int(u16(body))
                let ts = UInt64(u32(body + 4)) << 32 | UInt64(u32(body + 8))
                let caplen = Int(u32(body + 12)), wirelen = Int(u32(body + 16))
                guard caplen <= bodyLen - 20 else {
                    return stop("packet block at offset \(base + at): caplen \(caplen) but the block holds \(bodyLen - 20) bytes")
                }
                guard ifid < interfaces.count else {
                    return stop("packet block at offset \(base + at): interface \(ifid) but the section declares \(interfaces.count)")
                }
                let i = interfaces[ifid]
                return CapturedPacket(
                    data: slice(body + 20, caplen), timestampNanos: i.nanos(ts),
                    wireLength: max(wirelen, caplen), linkType: i.linkType, interface: ifid)
            case Pcapng.spbType:
                guard bodyLen >= 4 else {
                    return stop("simple packet block at offset \(base + at) too short: length \(len)")
                }
                guard !interfaces.isEmpty else {
                    return stop("simple packet block at offset \(base + at) before any interface description")
                }
                let wirelen = Int(u32(body))
                let caplen = min(wirelen, bodyLen - 4)
                return CapturedPacket(
                    data: slice(body + 4, caplen), timestampNanos: 0,
                    wireLength: wirelen, linkType: interfaces[0].linkType, interface: 0)
            default:
                break  // name resolution, statistics, secrets, custom, unknown: skipped
            }
        }
    }

    /// Checks the block at `at`: enough bytes for its header, a sane length that fits, and a
    /// trailing length equal to the leading one. For a Section Header Block, first sets the byte
    /// order from its magic. Returns the problem (with the bytes the block needs if only the
    /// data ran out, 0 otherwise), or nil.
    mutating func readBlockHeader(at: Int) -> (message: String, need: Int)? {
        let left = bytes.count - at
        guard left >= 12 else { return ("truncated block header at offset \(base + at): \(left) bytes left, need 12", 12) }
        if bytes.be32(at) == Pcapng.shbType {
            switch bytes.le32(at + 8) {
            case Pcapng.byteOrderMagic: bigEndian = false
            case Pcapng.byteOrderMagic.byteSwapped: bigEndian = true
            default:
                return ("section header at offset \(base + at): unknown byte-order magic \(Self.hex(bytes.be32(at + 8)))", 0)
            }
        }
        let len = u32(at + 4)
        guard len >= 12 else { return ("block at offset \(base + at) has length \(len), less than 12", 0) }
        guard len % 4 == 0 else { return ("block at offset \(base + at) has length \(len), not a multiple of 4", 0) }
        guard len <= left else { return ("truncated block at offset \(base + at): length \(len) but \(left) bytes left", Int(len)) }
        let trailer = u32(at + Int(len) - 4)
        guard trailer == len else {
            return ("block at offset \(base + at): trailing length \(trailer) differs from length \(len)", 0)
        }
        return nil
    }

    /// Starts a new section (its byte order is already set): checks the version and forgets the
    /// interfaces of the previous section.
    mutating func readSectionHeader(at: Int, length: Int) -> String? {
        guard length >= 28 else { return "section header at offset \(base + at) too short: length \(length)" }
        let major = u16(at + 12), minor = u16(at + 14)
        guard major == 1 else { return "section header at offset \(base + at): unsupported version \(major).\(minor)" }
        interfaces.removeAll(keepingCapacity: true)
        return nil
    }

    /// Adds an interface from an Interface Description Block.
    mutating func readInterface(at: Int, body: Int, bodyLen: Int) -> String? {
        guard bodyLen >= 8 else { return "interface description at offset \(base + at) too short" }
        guard interfaces.count < Self.maxInterfaces else {
            return "interface description at offset \(base + at): more than \(Self.maxInterfaces) interfaces in a section"
        }
        var i = PcapngInterface(linkType: UInt32(u16(body)), snaplen: u32(body + 4))
        // Options: code, length, value padded to 4 bytes; each one consumes at least 4 bytes.
        var o = body + 8
        let end = body + bodyLen
        while end - o >= 4 {
            let code = u16(o), olen = Int(u16(o + 2))
            if code == Pcapng.optEnd { break }
            let value = o + 4
            guard olen <= end - value else {
                return "interface description at offset \(base + at): option \(code) at \(o) overruns the block"
            }
            switch code {
            case Pcapng.optTsresol:
                guard olen == 1 else { return "interface description at offset \(base + at): if_tsresol of length \(olen)" }
                let r = bytes.u8(value)
                let power = UInt64(r & 0x7F)
                if r & 0x80 != 0 {
                    guard power <= 63 else { return "interface description at offset \(base + at): if_tsresol 2^-\(power) too fine" }
                    i.unitsPerSecond = 1 << power
                } else {
                    guard power <= 19 else { return "interface description at offset \(base + at): if_tsresol 10^-\(power) too fine" }
                    var u: UInt64 = 1
                    for _ in 0..<power { u *= 10 }
                    i.unitsPerSecond = u
                }
            case Pcapng.optTsoffset:
                guard olen == 8 else { return "interface description at offset \(base + at): if_tsoffset of length \(olen)" }
                i.offsetSeconds = u64(value)
            default:
                break
            }
            o = value + min((olen + 3) & ~3, end - value)
        }
        interfaces.append(i)
        return nil
    }
}
