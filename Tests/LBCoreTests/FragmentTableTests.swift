import LBCore
import Testing

/// Frames for the fragment table tests, built by hand so that the table is checked against
/// bytes that no other code in the project produced.
enum Frag {
    static func ipv4(src: [UInt8], dst: [UInt8], proto: UInt8, id: UInt16, offset: Int, more: Bool, payload: [UInt8]) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 20)
        h[0] = 0x45
        let total = 20 + payload.count
        h[2] = UInt8(total >> 8); h[3] = UInt8(total & 0xFF)
        h[4] = UInt8(id >> 8); h[5] = UInt8(id & 0xFF)
        let fo = UInt16(offset / 8) | (more ? 0x2000 : 0)
        h[6] = UInt8(fo >> 8); h[7] = UInt8(fo & 0xFF)
        h[8] = 64; h[9] = proto
        h[12..<16] = src[0..<4]; h[16..<20] = dst[0..<4]
        return h + payload
    }

    static func ethernet(_ ip: [UInt8], type: UInt16 = 0x0800) -> [UInt8] {
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, UInt8(type >> 8), UInt8(type & 0xFF)] + ip
    }

    static func udp(sport: UInt16, dport: UInt16, payload: [UInt8]) -> [UInt8] {
        let len = 8 + payload.count
        return [UInt8(sport >> 8), UInt8(sport & 0xFF), UInt8(dport >> 8), UInt8(dport & 0xFF),
                UInt8(len >> 8), UInt8(len & 0xFF), 0, 0] + payload
    }

    /// An IPv4/UDP datagram cut into Ethernet frames of at most `size` payload bytes (a multiple of 8).
    static func fragments(src: [UInt8] = [10, 0, 0, 1], dst: [UInt8] = [10, 0, 0, 2], id: UInt16, udpPayload: [UInt8],
                          sport: UInt16 = 5000, dport: UInt16 = 53, size: Int = 64) -> [[UInt8]] {
        let l4 = udp(sport: sport, dport: dport, payload: udpPayload)
        var frames: [[UInt8]] = []
        var off = 0
        while off < l4.count {
            let n = min(size, l4.count - off)
            let more = off + n < l4.count
            frames.append(ethernet(ipv4(src: src, dst: dst, proto: 17, id: id, offset: off, more: more, payload: Array(l4[off..<off + n]))))
            off += n
        }
        return frames
    }

    /// An Ethernet/IPv4/UDP frame of an inner flow (what a VXLAN packet carries).
    static func innerFrame(sport: UInt16, dport: UInt16, size: Int) -> [UInt8] {
        ethernet(ipv4(src: [192, 168, 1, 1], dst: [192, 168, 1, 2], proto: 17, id: 1, offset: 0, more: false,
                      payload: udp(sport: sport, dport: dport, payload: [UInt8](repeating: 0xAB, count: size))))
    }

    static func vxlan(_ inner: [UInt8]) -> [UInt8] { [0x08, 0, 0, 0, 0, 0, 42, 0] + inner }
}

/// Runs frames through a decoder and a fragment table the way the dispatcher does; records
/// every delivery as (hash, bytes).
struct Harness: ~Copyable {
    let decoder: Decoder
    var table: FragmentTable
    var out: [(hash: UInt64, bytes: [UInt8], decoded: Decoded)] = []

    init(_ config: DecodeConfig = DecodeConfig(), limits: FragmentTable.Limits = FragmentTable.Limits()) {
        decoder = Decoder(config)
        table = FragmentTable(decoder: decoder, limits: limits)
    }

    mutating func feed(_ frame: [UInt8], at ts: UInt64 = 0) {
        frame.withUnsafeBytes { f in
            let d = decoder.decode(f, link: .ethernet)
            if d.isFragment {
                if case .deliver(let h) = table.offer(d, frame: f, timestampNanos: ts, wireLength: f.count) {
                    out.append((h, Array(f[d.start..<d.end]), d))
                }
            } else {
                out.append((decoder.flowHash(d), Array(f[d.start..<d.end]), d))
            }
            drain()
        }
    }

    mutating func drain() {
        while let r = table.popReady() { out.append((r.hash, Array(r.bytes[r.decoded.start..<r.decoded.end]), r.decoded)) }
    }

    mutating func sweep(_ now: UInt64) { table.sweep(now: now); drain() }
    mutating func flush() { table.flush(); drain() }

    func hashOfUnfragmented(sport: UInt16 = 5000, dport: UInt16 = 53) -> UInt64 {
        let f = Frag.ethernet(Frag.ipv4(src: [10, 0, 0, 1], dst: [10, 0, 0, 2], proto: 17, id: 9, offset: 0, more: false,
                                        payload: Frag.udp(sport: sport, dport: dport, payload: [1, 2, 3])))
        return f.withUnsafeBytes { decoder.flowHash(decoder.decode($0, link: .ethernet)) }
    }
}

@Suite struct FragmentTableTests {
    @Test func inOrderFragmentsFollowTheirFlow() {
        var h = Harness()
        let frags = Frag.fragments(id: 7, udpPayload: [UInt8](repeating: 1, count: 300))
        for f in frags { h.feed(f) }
        #expect(h.out.count == frags.count)
        let flow = h.hashOfUnfragmented()
        #expect(h.out.allSatisfy { $0.hash == flow })
    }

    /// Fragments that come before their first fragment are held, then delivered right after it
    /// with the flow's hash.
    @Test func earlyFragmentsWaitForTheFirst() {
        var h = Harness()
        let frags = Frag.fragments(id: 8, udpPayload: [UInt8](repeating: 2, count: 300))
        for f in frags.dropFirst().reversed() { h.feed(f) }
        #expect(h.out.isEmpty)
        #expect(h.table.heldCount == frags.count - 1)
        h.feed(frags[0])
        #expect(h.out.count == frags.count)
        #expect(h.out.first?.bytes == Array(frags[0][14...]) || h.out.first?.bytes == frags[0])
        let flow = h.hashOfUnfragmented()
        #expect(h.out.allSatisfy { $0.hash == flow })
        #expect(h.table.heldCount == 0)
    }

    /// Without their first fragment, held fragments are released at the timeout, hashed on
    /// addresses and protocol, and counted.
    @Test func orphansTimeOut() {
        var h = Harness()
        let frags = Frag.fragments(id: 9, udpPayload: [UInt8](repeating: 3, count: 200))
        for f in frags.dropFirst() { h.feed(f, at: 1_000) }
        h.sweep(1_000 + 1_000_000_000)
        #expect(h.out.isEmpty)
        h.sweep(1_000 + 2_100_000_000)
        #expect(h.out.count == frags.count - 1)
        #expect(h.table.counters.unmatched == UInt64(frags.count - 1))
        let hashes = Set(h.out.map(\.hash))
        #expect(hashes.count == 1)
    }

    /// A VXLAN packet whose outer UDP datagram is fragmented: reassembled, decapsulated, and
    /// delivered once, hashed on the inner flow.
    @Test func fragmentedTunnelIsReassembledAndDecapsulated() {
        var h = Harness()
        let inner = Frag.innerFrame(sport: 1111, dport: 2222, size: 400)
        let frags = Frag.fragments(id: 10, udpPayload: Frag.vxlan(inner), sport: 40000, dport: 4789, size: 128)
        #expect(frags.count > 2)
        for f in frags.reversed() { h.feed(f) }              // any order
        #expect(h.out.count == 1)
        #expect(h.out.first?.bytes == inner)
        #expect(h.out.first?.decoded.depth == 1)
        #expect(h.table.counters.reassembled == 1)
        #expect(h.table.counters.merged == UInt64(frags.count - 1))
        // Same hash as the inner packet sent unfragmented.
        let whole = Frag.ethernet(Frag.ipv4(src: [1, 1, 1, 1], dst: [2, 2, 2, 2], proto: 17, id: 3, offset: 0, more: false,
                                            payload: Frag.udp(sport: 999, dport: 4789, payload: Frag.vxlan(inner))))
        let direct = whole.withUnsafeBytes { h.decoder.flowHash(h.decoder.decode($0, link: .ethernet)) }
        #expect(h.out.first?.hash == direct)
    }

    /// With --decap keep the original fragments are delivered, all with the inner flow's hash.
    @Test func keepModeDeliversTheFragmentsWithTheInnerHash() {
        var h = Harness(DecodeConfig(keepEncapsulation: true))
        let inner = Frag.innerFrame(sport: 1111, dport: 2222, size: 400)
        let frags = Frag.fragments(id: 11, udpPayload: Frag.vxlan(inner), sport: 40000, dport: 4789, size: 128)
        for f in frags { h.feed(f) }
        #expect(h.out.count == frags.count)
        #expect(Set(h.out.map(\.hash)).count == 1)
        let whole = Frag.ethernet(Frag.ipv4(src: [1, 1, 1, 1], dst: [2, 2, 2, 2], proto: 17, id: 3, offset: 0, more: false,
                                            payload: Frag.udp(sport: 999, dport: 4789, payload: Frag.vxlan(inner))))
        let direct = whole.withUnsafeBytes { h.decoder.flowHash(h.decoder.decode($0, link: .ethernet)) }
        #expect(h.out.first?.hash == direct)
    }

    /// An incomplete tunnel datagram is delivered as it came (undecapsulated) at the end.
    @Test func incompleteTunnelIsDeliveredAtFlush() {
        var h = Harness()
        let inner = Frag.innerFrame(sport: 1, dport: 2, size: 400)
        let frags = Frag.fragments(id: 12, udpPayload: Frag.vxlan(inner), sport: 40000, dport: 4789, size: 128)
        for f in frags.dropLast() { h.feed(f) }
        #expect(h.out.isEmpty)
        h.flush()
        #expect(h.out.count == frags.count - 1)
        #expect(h.table.counters.incomplete == 1)
    }

    /// Many interleaved datagrams in shuffled order: every fragment of each comes out with its
    /// datagram's flow hash, nothing is lost, nothing is left held.
    @Test func interleavedDatagrams() {
        var h = Harness()
        var all: [[UInt8]] = []
        var expectedHash: [UInt64] = []
        for i in 0..<200 {
            let sport = UInt16(6000 + i)
            let frags = Frag.fragments(id: UInt16(100 + i), udpPayload: [UInt8](repeating: UInt8(i & 0xFF), count: 150 + i), sport: sport)
            all += frags
            expectedHash.append(h.hashOfUnfragmented(sport: sport))
        }
        var rng = SystemRandomNumberGenerator()
        all.shuffle(using: &rng)
        for f in all { h.feed(f) }
        h.flush()
        #expect(h.out.count == all.count)
        #expect(h.table.heldCount == 0)
        for o in h.out {
            let sport = Int(o.decoded.key.sport)
            if o.decoded.fragment.offset == 0 { #expect(o.hash == expectedHash[sport - 6000]) }
        }
        #expect(Set(h.out.map(\.hash)).isSubset(of: Set(expectedHash)))
    }

    /// The table's bounds hold: more datagrams holding fragments than it has entries for
    /// evict the oldest (counted); more held fragments than the pool holds are delivered at
    /// once (counted). Nothing is lost either way.
    @Test(arguments: [(datagrams: 4, held: 256), (datagrams: 256, held: 8)])
    func boundsAreKept(_ bounds: (datagrams: Int, held: Int)) {
        var limits = FragmentTable.Limits()
        limits.datagrams = bounds.datagrams
        limits.heldFragments = bounds.held
        var h = Harness(limits: limits)
        var sent = 0
        for i in 0..<100 {
            let frags = Frag.fragments(id: UInt16(i), udpPayload: [UInt8](repeating: 0, count: 200), sport: UInt16(7000 + i))
            for f in frags.dropFirst() { h.feed(f); sent += 1 }
        }
        h.flush()
        #expect(h.out.count == sent)                           // nothing lost
        if bounds.datagrams < 100 { #expect(h.table.counters.evicted > 0) }
        if bounds.held < bounds.datagrams { #expect(h.table.counters.notHeld > 0) }
        #expect(h.table.heldCount == 0)
    }

    /// A datagram whose every byte has gone by frees its entry, so a busy stream of fragmented
    /// datagrams never fills the table.
    @Test func completedDatagramsFreeTheirEntries() {
        var limits = FragmentTable.Limits()
        limits.datagrams = 8
        var h = Harness(limits: limits)
        for i in 0..<1000 {
            for f in Frag.fragments(id: UInt16(i & 0xFFFF), udpPayload: [UInt8](repeating: 0, count: 200), sport: UInt16(1000 + i)) { h.feed(f) }
        }
        #expect(h.table.counters.evicted == 0)
        #expect(h.table.counters.notHeld == 0)
    }

    /// Hostile fragments (overlaps, duplicates, absurd offsets, zero length) never crash, and
    /// everything offered comes out.
    @Test func hostileFragments() {
        var h = Harness()
        var rng = SystemRandomNumberGenerator()
        var sent = 0
        for i in 0..<3000 {
            let off = Int.random(in: 0...8191, using: &rng) * 8
            let len = Int.random(in: 0...200, using: &rng)
            let more = Bool.random(using: &rng)
            let id = UInt16.random(in: 0...20, using: &rng)
            let proto: UInt8 = [17, 6, 47, 4, 41][i % 5]
            var payload = (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if off == 0 && proto == 17 && len >= 4 { payload[2] = 0x12; payload[3] = 0xB5 }   // dport 4789
            h.feed(Frag.ethernet(Frag.ipv4(src: [10, 9, 9, 9], dst: [10, 8, 8, 8], proto: proto, id: id, offset: off,
                                           more: more || off == 0, payload: payload)), at: UInt64(i) * 1_000_000)
            sent += 1
        }
        h.flush()
        #expect(h.out.count <= sent)
        #expect(h.out.count + Int(h.table.counters.merged) == sent)
        #expect(h.table.heldCount == 0)
    }
}
