// IP fragmentation of a finished datagram (IPv4 or IPv6), for arbitrary fragment sizes and
// orders: the fragments a test or a trace needs to check that every piece follows its flow.

public enum FragmentOrder: Sendable {
    case inOrder
    case reversed
    /// the last fragment first, then the others in order (what some stacks send)
    case lastFirst
    /// a permutation drawn from the seed
    case shuffled(seed: UInt64)
    /// fragment indexes in sending order (a fragment may be left out or repeated)
    case custom([Int])

    public func apply<T>(_ items: [T]) -> [T] {
        switch self {
        case .inOrder: return items
        case .reversed: return items.reversed()
        case .lastFirst:
            guard let last = items.last else { return items }
            return [last] + items.dropLast()
        case .shuffled(let seed):
            var rng = SeededRNG(seed: seed)
            return items.shuffled(using: &rng)
        case .custom(let order):
            return order.map { items[$0] }
        }
    }
}

public enum Fragmenter {
    /// Splits an IPv4 datagram (bytes from its IP header on) into fragments. `sizes` are the
    /// payload bytes of each fragment but the last (rounded down to a multiple of 8, at least 8);
    /// the last one takes the rest. If `sizes` runs out, its last value repeats. Options are
    /// copied into later fragments only when their copy bit is set (RFC 791).
    public static func ipv4(_ datagram: [UInt8], sizes: [Int], order: FragmentOrder = .inOrder) -> [[UInt8]] {
        precondition(datagram.count >= 20 && datagram[0] >> 4 == 4, "not an IPv4 datagram")
        let ihl = Int(datagram[0] & 0x0F) * 4
        let total = min(Int(datagram.readBE16(2)), datagram.count)
        let header = Array(datagram[0..<ihl])
        let payload = Array(datagram[ihl..<total])
        let baseOffset = Int(datagram.readBE16(6) & 0x1FFF) * 8
        let baseMore = datagram.readBE16(6) & 0x2000 != 0
        let laterHeader = copiedOptionsHeader(header)
        let out = chunks(payload.count, sizes).map { (pos, n, last) -> [UInt8] in
            var h = pos == 0 ? header : laterHeader
            h.setBE16(UInt16(h.count + n), at: 2)
            let more = !last || baseMore
            h.setBE16((datagram.readBE16(6) & 0x4000) | (more ? 0x2000 : 0) | UInt16((baseOffset + pos) / 8), at: 6)
            h[10] = 0; h[11] = 0
            h.setBE16(Checksum.internet(h), at: 10)
            return h + payload[pos..<(pos + n)]
        }
        return order.apply(out)
    }

    /// Where each fragment's payload starts, how long it is, and whether it is the last, for a
    /// payload of `count` bytes cut by `sizes` (see `ipv4(_:sizes:order:)`); at least one.
    static func chunks(_ count: Int, _ sizes: [Int]) -> [(pos: Int, n: Int, last: Bool)] {
        var out: [(pos: Int, n: Int, last: Bool)] = []
        var pos = 0
        while pos < count || out.isEmpty {
            let want = sizes.isEmpty ? count : max(8, sizes[min(out.count, sizes.count - 1)] / 8 * 8)
            let last = count - pos <= want
            let n = last ? count - pos : want
            out.append((pos, n, last))
            pos += n
        }
        return out
    }

    /// Fragments of `size` payload bytes each (a multiple of 8).
    public static func ipv4(_ datagram: [UInt8], size: Int, order: FragmentOrder = .inOrder) -> [[UInt8]] {
        ipv4(datagram, sizes: [size], order: order)
    }

    /// The header for fragments after the first: only options with the copy bit stay.
    static func copiedOptionsHeader(_ header: [UInt8]) -> [UInt8] {
        var opts: [UInt8] = []
        var p = 20
        while p < header.count {
            let t = header[p]
            if t == 0 { break }
            if t == 1 { p += 1; continue }
            guard p + 1 < header.count else { break }
            let len = max(2, Int(header[p + 1]))
            if t & 0x80 != 0 { opts += header[p..<min(p + len, header.count)] }
            p += len
        }
        while opts.count % 4 != 0 { opts.append(0) }
        var h = Array(header[0..<20]) + opts
        h[0] = 0x40 | UInt8(h.count / 4)
        return h
    }

    /// Splits an IPv6 datagram into fragments with a fragment header of identification `id`.
    /// The unfragmentable part (the IPv6 header, hop-by-hop, routing, and destination options
    /// before a routing header) is repeated in every fragment; the rest is split as for IPv4.
    public static func ipv6(_ datagram: [UInt8], sizes: [Int], id: UInt32, order: FragmentOrder = .inOrder) -> [[UInt8]] {
        precondition(datagram.count >= 40 && datagram[0] >> 4 == 6, "not an IPv6 datagram")
        let plen = Int(datagram.readBE16(4))
        let end = min(40 + plen, datagram.count)
        // The extension headers in front of the upper layer: the unfragmentable part ends after
        // the last hop-by-hop or routing header (destination options before it belong to it).
        var chain: [(nhAt: Int, end: Int, type: UInt8)] = []
        var at = 40, nhAt = 6
        while chain.count < 16, [0, 43, 60].contains(datagram[nhAt]), at + 8 <= end {
            let len = (Int(datagram[at + 1]) + 1) * 8
            chain.append((nhAt, at + len, datagram[nhAt]))
            nhAt = at
            at += len
        }
        var p = 40
        var pointer = 6
        if let lastIndex = chain.lastIndex(where: { $0.type == 0 || $0.type == 43 }) {
            p = chain[lastIndex].end
            pointer = lastIndex + 1 < chain.count ? chain[lastIndex + 1].nhAt : nhAt
        }
        let nh = datagram[pointer]
        let unfragmentable = Array(datagram[0..<p])
        let fragmentable = Array(datagram[p..<end])
        let out = chunks(fragmentable.count, sizes).map { (pos, n, last) -> [UInt8] in
            var h = unfragmentable
            h[pointer] = 44
            var fh: [UInt8] = [nh, 0]
            fh.be16(UInt16(pos) & 0xFFF8 | (last ? 0 : 1))
            fh.be32(id)
            h.setBE16(UInt16(h.count - 40 + 8 + n), at: 4)
            return h + fh + fragmentable[pos..<(pos + n)]
        }
        return order.apply(out)
    }

    public static func ipv6(_ datagram: [UInt8], size: Int, id: UInt32, order: FragmentOrder = .inOrder) -> [[UInt8]] {
        ipv6(datagram, sizes: [size], id: id, order: order)
    }
}
