// Classic pcap: a 24-byte file header, then records of a 16-byte header and caplen bytes.

extension CaptureReader {
    mutating func openPcap() throws(CaptureError) {
        guard bytes.count >= Pcap.fileHeaderSize else { throw .tooShort }
        let major = u16(4), minor = u16(6)
        guard major == 2 else { throw .unsupportedVersion(major: major, minor: minor) }
        // As libpcap: before 2.3 the lengths were swapped; in 2.3 some writers swapped them.
        lengths = minor < 3 ? .swapped : minor == 3 ? .maybeSwapped : .normal
        pcapSnaplen = u32(16)
        // The low 16 bits are the LINKTYPE; the upper bits hold FCS information (libpcap's
        // LT_LINKTYPE mask), which lb does not use.
        pcapLinkType = u32(20) & 0xFFFF
    }

    mutating func nextPcap() -> CapturedPacket? {
        let at = offset
        let left = bytes.count - at
        if left == 0 { return short(nil, need: Pcap.recordHeaderSize) }
        guard left >= Pcap.recordHeaderSize else {
            return short("truncated record header at offset \(base + at): \(left) bytes left, need 16", need: Pcap.recordHeaderSize)
        }
        let sec = UInt64(u32(at)), sub = UInt64(u32(at + 4))
        var caplen = Int(u32(at + 8)), wirelen = Int(u32(at + 12))
        switch lengths {
        case .normal: break
        case .swapped: swap(&caplen, &wirelen)
        case .maybeSwapped: if caplen > wirelen { swap(&caplen, &wirelen) }
        }
        guard caplen <= Self.maxCaplen else {
            return stop("absurd caplen \(caplen) in record at offset \(base + at)")
        }
        let body = left - Pcap.recordHeaderSize
        guard caplen <= body else {
            return short("truncated record at offset \(base + at): caplen \(caplen) but \(body) bytes left",
                         need: Pcap.recordHeaderSize + caplen)
        }
        offset = at + Pcap.recordHeaderSize + caplen
        // Wrapping arithmetic: a hostile timestamp gives a wrong time, never a trap.
        let nanos = sec &* 1_000_000_000 &+ (nanosecond ? sub : sub &* 1000)
        return CapturedPacket(
            data: slice(at + Pcap.recordHeaderSize, caplen), timestampNanos: nanos,
            wireLength: max(wirelen, caplen), linkType: pcapLinkType, interface: 0)
    }
}
