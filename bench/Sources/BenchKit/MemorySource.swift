import LBBroker
import LBCore

/// A capture held in memory: the file's bytes (one 64-byte aligned buffer, records as in the
/// file, the same layout the C yardstick reads) and a `Frame` per packet pointing into them.
public final class FrameSet: @unchecked Sendable {
    public let buffer: UnsafeMutableRawBufferPointer
    public let frames: UnsafeMutablePointer<Frame>
    public let count: Int
    /// captured bytes of all frames
    public let bytes: Int

    public init(pcap path: String) throws(BenchError) {
        let file = try Traffic.readFile(path)
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(file.count, 1), alignment: 64)
        file.withUnsafeBytes { buf.copyMemory(from: $0) }
        buffer = buf
        var reader: CaptureReader
        do { reader = try CaptureReader(UnsafeRawBufferPointer(rebasing: buf[0..<file.count])) } catch { throw BenchError("\(path): \(error)") }
        var list: [Frame] = []
        var total = 0
        while let p = reader.next() {
            list.append(Frame(bytes: p.data, wireLength: p.wireLength, timestampNanos: p.timestampNanos,
                              linkType: p.linkType, input: 0))
            total += p.data.count
        }
        if let why = reader.stoppedEarly { throw BenchError("\(path): \(why)") }
        guard !list.isEmpty else { throw BenchError("\(path): no packets") }
        count = list.count
        bytes = total
        frames = .allocate(capacity: count)
        frames.initialize(from: list, count: count)
    }

    deinit {
        frames.deinitialize(count: count)
        frames.deallocate()
        buffer.deallocate()
    }

    /// The same checksum of flow hashes the C yardstick prints (`hashsum`): every frame decoded
    /// once in order, h = (h ^ hash) * 0x100000001b3 (64-bit FNV-style fold).
    public func hashChecksum(_ decoder: Decoder) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for i in 0..<count {
            let f = frames[i]
            guard let link = LinkType(linktype: f.linkType) else { continue }
            let d = decoder.decode(f.bytes, link: link)
            h = (h ^ decoder.flowHash(d)) &* 0x0000_0100_0000_01B3
        }
        return h
    }

    /// What the input is made of (one decode per frame).
    public func census(_ decoder: Decoder) -> String {
        var v4 = 0, v6 = 0, nonIP = 0, tunneled = 0, errors = 0, fragments = 0, vlan = 0
        for i in 0..<count {
            let f = frames[i]
            guard let link = LinkType(linktype: f.linkType) else { continue }
            let d = decoder.decode(f.bytes, link: link)
            if d.nonIP { nonIP += 1 } else if d.key.isIPv4 { v4 += 1 } else { v6 += 1 }
            if d.depth > 0 { tunneled += 1 }
            if d.error != .none { errors += 1 }
            if d.isFragment { fragments += 1 }
            if d.hasVLAN { vlan += 1 }
        }
        let avg = Double(bytes) / Double(count)
        return "\(count) frames, mean \(Int(avg.rounded())) B; IPv4 \(v4), IPv6 \(v6), non-IP \(nonIP), decapsulated \(tunneled), VLAN \(vlan), fragments \(fragments), parse errors \(errors)"
    }
}

extension ReplaySource {
    /// Cycles over a `FrameSet` for `packets` packets (the source lb itself offers, so the
    /// dispatcher runs specialized for it, as it does for lb's own sources).
    public init(_ set: FrameSet, packets: Int, start: Int = 0) {
        self.init(frames: UnsafePointer(set.frames), count: set.count, packets: packets, start: start, live: true)
    }
}
