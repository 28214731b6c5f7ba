/// Keeps every fragment of an IP datagram on the ring of its flow, and rebuilds datagrams that
/// carry a tunnel so that they can be decapsulated.
///
/// - A first fragment (offset 0) carries the ports: it is hashed like any packet of its flow
///   and delivered at once; the table remembers that hash for the datagram's other fragments.
/// - A fragment that arrives before its first fragment is held (copied into a preallocated
///   pool) until the first fragment arrives, then delivered with the same hash right after it.
/// - When the first fragment shows a tunnel (UDP to a tunnel port, IP-in-IP, GRE), all
///   fragments are held until the datagram is complete; it is then rebuilt and decoded again.
///   If a tunnel is removed, the inner packet is delivered once (its fragments were merged);
///   with `--decap keep`, or if the rebuilt datagram is no tunnel after all, the original
///   fragments are delivered, all with the hash of the inner flow.
/// - Memory and time are bounded: a fixed number of datagrams and held fragments, a fixed
///   size per held fragment, and a timeout in packet time. Fragments that time out waiting for
///   their first fragment are delivered hashed on addresses and protocol (they may then reach
///   another ring than their flow; counted as `unmatched`); an incomplete tunnel datagram is
///   delivered fragment by fragment, undecapsulated (counted as `incomplete`).
public struct FragmentTable: ~Copyable {
    public struct Limits: Sendable {
        public var datagrams: Int = 4096
        public var heldFragments: Int = 1024
        public var heldBytes: Int = 9216 + 64
        public var timeoutNanos: UInt64 = 2_000_000_000
        public init() {}
    }

    /// What happened to fragments, for the stats.
    public struct Counters: Sendable {
        public var fragments: UInt64 = 0
        public var held: UInt64 = 0
        public var reassembled: UInt64 = 0
        /// packets fewer than came in: n fragments that became one inner packet count n - 1
        public var merged: UInt64 = 0
        public var unmatched: UInt64 = 0
        public var incomplete: UInt64 = 0
        public var evicted: UInt64 = 0
        public var notHeld: UInt64 = 0
        public init() {}
    }

    /// The decision for a fragment just offered.
    public enum Verdict {
        /// deliver the frame now with this hash
        case deliver(hash: UInt64)
        /// the table keeps it; later `popReady` returns it
        case held
    }

    @usableFromInline struct Key: Equatable {
        var srcHi: UInt64, srcLo: UInt64, dstHi: UInt64, dstLo: UInt64
        var id: UInt32, vni: UInt32
        var proto: UInt8, isIPv6: Bool
    }

    @usableFromInline enum State: UInt8 { case empty, waiting, known, assembling }

    @usableFromInline struct Entry {
        var key: Key
        var state: State = .empty
        var hash: UInt64 = 0
        var first: Int32 = -1        // first held fragment (list in arrival order)
        var last: Int32 = -1
        var count: Int32 = 0
        var deadline: UInt64 = 0
        /// payload bytes seen, and the datagram's length once its last fragment came (0 before)
        var seen = 0
        var total = 0
    }

    /// A held fragment: the bytes to deliver (any synthesized Ethernet header already written)
    /// and its decode, with offsets relative to those bytes.
    @usableFromInline struct Held {
        var length = 0
        var decoded = Decoded()
        var timestampNanos: UInt64 = 0
        var wireLength = 0
        var synthesized = false
        var next: Int32 = -1
    }

    /// A packet the table releases: deliver `bytes` with `hash`.
    public struct Ready {
        public var bytes: UnsafeRawBufferPointer
        public var decoded: Decoded
        public var hash: UInt64
        public var timestampNanos: UInt64
        public var wireLength: Int
        /// an Ethernet header was synthesized in front of the original bytes
        public var synthesized: Bool
        /// built from several fragments (the inner packet of a reassembled tunnel)
        public var reassembled: Bool
    }

    let limits: Limits
    let decoder: Decoder
    var entries: [Entry]
    var held: [Held]
    var pool: UnsafeMutableRawPointer
    var freeHeld: [Int32]
    let scratch: UnsafeMutableRawPointer
    static let scratchSize = 65535 + 64
    /// released packets waiting for the dispatcher (indices into `held`, or -2 for scratch)
    @usableFromInline var ready: [Int32]
    var readyHash: [UInt64]
    @usableFromInline var readyHead = 0
    @usableFromInline var scratchReady: Ready? = nil
    /// held slots to free once the dispatcher has taken the ready packets
    var toFree: [Int32]
    var nextSweep: UInt64 = 0
    /// reused when checking a datagram for completeness (no allocation per fragment)
    var order: [(offset: Int, index: Int32)]
    public private(set) var counters = Counters()

    public init(decoder: Decoder, limits: Limits = Limits()) {
        self.limits = limits
        self.decoder = decoder
        var cap = 16
        while cap < limits.datagrams * 2 { cap <<= 1 }
        entries = Array(repeating: Entry(key: Key(srcHi: 0, srcLo: 0, dstHi: 0, dstLo: 0, id: 0, vni: 0, proto: 0, isIPv6: false)), count: cap)
        held = Array(repeating: Held(), count: limits.heldFragments)
        pool = .allocate(byteCount: limits.heldFragments * limits.heldBytes, alignment: 64)
        freeHeld = (0..<Int32(limits.heldFragments)).reversed().map { $0 }
        scratch = .allocate(byteCount: Self.scratchSize, alignment: 64)
        ready = []
        ready.reserveCapacity(limits.heldFragments)
        readyHash = []
        readyHash.reserveCapacity(limits.heldFragments)
        toFree = []
        toFree.reserveCapacity(limits.heldFragments)
        order = []
        order.reserveCapacity(64)
    }

    deinit {
        pool.deallocate()
        scratch.deallocate()
    }

    var liveEntries = 0

    // MARK: Offering fragments

    /// Decides what to do with a fragment (`d.isFragment` is true). `frame` is the frame `d`
    /// was decoded from. Released packets (held ones that are now complete or matched) are
    /// then available from `popReady`.
    public mutating func offer(_ d: Decoded, frame: UnsafeRawBufferPointer, timestampNanos now: UInt64,
                               wireLength: Int) -> Verdict {
        counters.fragments &+= 1
        finishRelease()
        let key = Key(srcHi: d.key.srcHi, srcLo: d.key.srcLo, dstHi: d.key.dstHi, dstLo: d.key.dstLo,
                      id: d.fragment.id, vni: d.vni, proto: d.fragment.proto, isIPv6: d.fragment.isIPv6)
        let flowHash = hash(d)
        let isFirst = d.fragment.offset == 0
        guard let slot = findOrInsert(key, now: now) else {
            counters.notHeld &+= 1
            return .deliver(hash: isFirst ? flowHash : addressHash(d))
        }
        let length = d.fragment.payloadEnd - d.fragment.payloadStart
        entries[slot].seen += length
        if !d.fragment.more { entries[slot].total = d.fragment.offset + length }
        let verdict = decide(slot, d, frame: frame, now: now, wireLength: wireLength, flowHash: flowHash, isFirst: isFirst)
        // A datagram whose every byte has passed needs no entry any more.
        if entries[slot].state == .known && entries[slot].total > 0 && entries[slot].seen >= entries[slot].total {
            remove(slot)
        }
        return verdict
    }

    mutating func decide(_ slot: Int, _ d: Decoded, frame: UnsafeRawBufferPointer, now: UInt64, wireLength: Int,
                         flowHash: UInt64, isFirst: Bool) -> Verdict {
        switch entries[slot].state {
        case .known:
            return .deliver(hash: entries[slot].hash)
        case .empty, .waiting:
            if isFirst {
                if d.fragment.tunnel {
                    entries[slot].state = .assembling
                    entries[slot].hash = flowHash
                    guard hold(d, frame: frame, now: now, wireLength: wireLength, slot: slot) else {
                        return giveUp(slot, deliverNow: flowHash)
                    }
                    completeIfWhole(slot)
                    return .held
                }
                entries[slot].state = .known
                entries[slot].hash = flowHash
                releaseAll(slot, hash: flowHash)
                return .deliver(hash: flowHash)
            }
            entries[slot].state = .waiting
            guard hold(d, frame: frame, now: now, wireLength: wireLength, slot: slot) else {
                counters.notHeld &+= 1
                return .deliver(hash: addressHash(d))
            }
            return .held
        case .assembling:
            guard hold(d, frame: frame, now: now, wireLength: wireLength, slot: slot) else {
                return giveUp(slot, deliverNow: entries[slot].hash)
            }
            completeIfWhole(slot)
            return .held
        }
    }

    /// Releases what has timed out by `now` (packet time). Cheap when nothing is due.
    public mutating func sweep(now: UInt64) {
        guard now >= nextSweep else { return }
        nextSweep = now &+ limits.timeoutNanos / 4
        finishRelease()
        expireAll { $0.deadline <= now }
    }

    /// Releases everything (end of input).
    public mutating func flush() {
        finishRelease()
        expireAll { _ in true }
    }

    /// Expires the entries `due` selects. Removal shifts a later entry into the freed slot,
    /// so the same slot is looked at again before moving on.
    mutating func expireAll(_ due: (Entry) -> Bool) {
        var i = 0
        while i < entries.count {
            if entries[i].state != .empty && due(entries[i]) {
                expire(i)
            } else {
                i += 1
            }
        }
    }

    /// Whether `popReady` has something (a cheap check for the data path's every batch).
    @inlinable
    public var hasReady: Bool { scratchReady != nil || readyHead < ready.count }

    /// The next released packet, valid until the next call into the table.
    public mutating func popReady() -> Ready? {
        if let r = scratchReady {
            scratchReady = nil
            return r
        }
        guard readyHead < ready.count else {
            finishRelease()
            return nil
        }
        let h = Int(ready[readyHead])
        let hv = readyHash[readyHead]
        readyHead += 1
        let rec = held[h]
        return Ready(bytes: UnsafeRawBufferPointer(start: pool + h * limits.heldBytes, count: rec.length),
                     decoded: rec.decoded, hash: hv, timestampNanos: rec.timestampNanos,
                     wireLength: rec.wireLength, synthesized: rec.synthesized, reassembled: false)
    }

    /// Held fragments at the moment.
    public var heldCount: Int { limits.heldFragments - freeHeld.count }

    // MARK: Internals

    func hash(_ d: Decoded) -> UInt64 { decoder.flowHash(d) }

    /// The hash of a fragment whose first fragment never came: addresses and protocol only.
    func addressHash(_ d: Decoded) -> UInt64 {
        var k = d
        if k.key.kind == .ports { k.key.kind = .addresses }
        return decoder.flowHash(k)
    }

    mutating func finishRelease() {
        guard readyHead >= ready.count else { return }
        for h in toFree { freeHeld.append(h) }
        toFree.removeAll(keepingCapacity: true)
        ready.removeAll(keepingCapacity: true)
        readyHash.removeAll(keepingCapacity: true)
        readyHead = 0
    }

    static func slotHash(_ k: Key) -> Int {
        var h = k.srcLo &* 0x9E37_79B9_7F4A_7C15 ^ k.dstLo &* 0xC2B2_AE3D_27D4_EB4F
        h ^= (k.srcHi ^ k.dstHi) &* 0x1656_67B1_9E37_79F9
        h ^= UInt64(k.id) << 17 ^ UInt64(k.proto) << 3 ^ UInt64(k.vni) << 40
        h ^= h >> 29
        return Int(truncatingIfNeeded: h &* 0xBF58_476D_1CE4_E5B9 >> 16)
    }

    mutating func findOrInsert(_ key: Key, now: UInt64) -> Int? {
        let mask = entries.count - 1
        var i = Self.slotHash(key) & mask
        while true {
            if entries[i].state == .empty { break }
            if entries[i].key == key { return i }
            i = (i + 1) & mask
        }
        if liveEntries >= limits.datagrams {
            evictOldest()
            return findOrInsert(key, now: now)
        }
        entries[i] = Entry(key: key, state: .waiting, deadline: now &+ limits.timeoutNanos)
        liveEntries += 1
        return i
    }

    /// Makes room: the oldest entry that holds nothing goes first (forgetting a hash costs
    /// nothing unless a late fragment comes); only evicting held fragments is counted.
    mutating func evictOldest() {
        var oldest = -1, oldestEmpty = -1
        for i in entries.indices where entries[i].state != .empty {
            if oldest < 0 || entries[i].deadline < entries[oldest].deadline { oldest = i }
            if entries[i].count == 0 && (oldestEmpty < 0 || entries[i].deadline < entries[oldestEmpty].deadline) { oldestEmpty = i }
        }
        if oldestEmpty >= 0 {
            remove(oldestEmpty)
            return
        }
        guard oldest >= 0 else { return }
        counters.evicted &+= 1
        expire(oldest)
    }

    /// Copies a fragment into the pool and appends it to the datagram's list.
    mutating func hold(_ d: Decoded, frame: UnsafeRawBufferPointer, now: UInt64, wireLength: Int, slot: Int) -> Bool {
        let synth = d.synthType != 0 ? 14 : 0
        let length = d.end - d.start + synth
        guard length <= limits.heldBytes, entries[slot].count < 64, let h = freeHeld.popLast() else { return false }
        let dst = pool + Int(h) * limits.heldBytes
        if synth != 0 { EthernetHeader.write(to: dst, frame: frame, decoded: d) }
        if d.end > d.start {
            (dst + synth).copyMemory(from: frame.baseAddress! + d.start, byteCount: d.end - d.start)
        }
        var rebased = d
        let shift = synth - d.start
        rebased.start = 0
        rebased.end = length
        rebased.synthType = 0
        rebased.synthDst = -1
        rebased.synthSrc = -1
        if rebased.l3 >= 0 { rebased.l3 += shift }
        rebased.fragment.payloadStart += shift
        rebased.fragment.payloadEnd += shift
        held[Int(h)] = Held(length: length, decoded: rebased, timestampNanos: now,
                            wireLength: d.deliveredWireLength(frameCount: frame.count, wireLength: wireLength),
                            synthesized: synth != 0, next: -1)
        if entries[slot].last >= 0 { held[Int(entries[slot].last)].next = h } else { entries[slot].first = h }
        entries[slot].last = h
        entries[slot].count += 1
        counters.held &+= 1
        return true
    }

    /// Queues every held fragment of the datagram for delivery with `hash`.
    mutating func releaseAll(_ slot: Int, hash: UInt64) {
        var h = entries[slot].first
        while h >= 0 {
            ready.append(h)
            readyHash.append(hash)
            toFree.append(h)
            h = held[Int(h)].next
        }
        entries[slot].first = -1
        entries[slot].last = -1
        entries[slot].count = 0
    }

    /// A tunnel datagram that cannot be held any longer: deliver what was held, undecapsulated.
    mutating func giveUp(_ slot: Int, deliverNow hash: UInt64) -> Verdict {
        counters.incomplete &+= 1
        releaseAll(slot, hash: hash)
        entries[slot].state = .known
        return .deliver(hash: hash)
    }

    mutating func expire(_ i: Int) {
        switch entries[i].state {
        case .waiting:
            if entries[i].count > 0 {
                counters.unmatched &+= UInt64(entries[i].count)
                let first = held[Int(entries[i].first)].decoded
                releaseAll(i, hash: addressHash(first))
            }
        case .assembling:
            counters.incomplete &+= 1
            releaseAll(i, hash: entries[i].hash)
        default:
            break
        }
        remove(i)
    }

    /// Removes entry `i` (backward-shift deletion keeps the probe sequences intact).
    mutating func remove(_ i: Int) {
        let mask = entries.count - 1
        var hole = i
        var j = (i + 1) & mask
        while entries[j].state != .empty {
            let home = Self.slotHash(entries[j].key) & mask
            if (j - home) & mask >= (j - hole) & mask {
                entries[hole] = entries[j]
                hole = j
            }
            j = (j + 1) & mask
        }
        entries[hole].state = .empty
        liveEntries -= 1
    }

    /// If every byte of the datagram is held, rebuilds it and decodes it again.
    mutating func completeIfWhole(_ slot: Int) {
        // Collect (offset, length) and check that the fragments cover 0..<total exactly once.
        var total = -1
        var covered = 0
        var h = entries[slot].first
        var frags: [(offset: Int, index: Int32)] = []
        swap(&frags, &order)                      // take the buffer: no copy, no allocation
        frags.removeAll(keepingCapacity: true)
        defer { swap(&frags, &order) }
        while h >= 0 {
            let f = held[Int(h)].decoded.fragment
            frags.append((f.offset, h))
            if !f.more { total = f.offset + (f.payloadEnd - f.payloadStart) }
            h = held[Int(h)].next
        }
        guard total > 0, total <= 65535 else { return }
        frags.sort { $0.offset < $1.offset }
        for f in frags {
            let fi = held[Int(f.index)].decoded.fragment
            guard fi.offset <= covered else { return }                  // a hole
            covered = max(covered, fi.offset + (fi.payloadEnd - fi.payloadStart))
        }
        guard covered >= total else { return }

        // Rebuild: a fresh IP header (the original one, without options or extension headers,
        // is all the decoder needs) and the payload in offset order.
        let first = held[Int(frags[0].index)]
        let d = first.decoded
        let ipHeader = d.fragment.isIPv6 ? 40 : 20
        guard ipHeader + total <= Self.scratchSize else { return }
        writeIPHeader(d, payloadLength: total)
        for f in frags {
            let rec = held[Int(f.index)]
            let fi = rec.decoded.fragment
            let len = min(fi.payloadEnd - fi.payloadStart, total - fi.offset)
            guard len > 0 else { continue }
            (scratch + ipHeader + fi.offset).copyMemory(from: pool + Int(f.index) * limits.heldBytes + fi.payloadStart, byteCount: len)
        }
        let packet = UnsafeRawBufferPointer(start: scratch, count: ipHeader + total)
        var inner = decoder.decodeReassembled(packet, context: d)
        let innerHash = hash(inner)
        counters.reassembled &+= 1
        if inner.depth > d.depth && !decoder.keepEncapsulation {
            // The tunnel came off: deliver its inner packet once, in place of the fragments.
            counters.merged &+= UInt64(entries[slot].count - 1)   // packets fewer than the trace had
            var hh = entries[slot].first
            while hh >= 0 { toFree.append(hh); hh = held[Int(hh)].next }
            entries[slot].first = -1
            entries[slot].last = -1
            entries[slot].count = 0
            inner.isFragment = false
            scratchReady = Ready(bytes: packet, decoded: inner, hash: innerHash, timestampNanos: held[Int(frags.last!.index)].timestampNanos,
                                 wireLength: inner.end - inner.start, synthesized: false, reassembled: true)
        } else {
            releaseAll(slot, hash: innerHash)
        }
        entries[slot].state = .known
        entries[slot].hash = innerHash
    }

    mutating func writeIPHeader(_ d: Decoded, payloadLength: Int) {
        let p = scratch
        if d.fragment.isIPv6 {
            p.storeBytes(of: UInt32(0x6000_0000).bigEndian, toByteOffset: 0, as: UInt32.self)
            p.storeBytes(of: UInt16(payloadLength).bigEndian, toByteOffset: 4, as: UInt16.self)
            p.storeBytes(of: d.fragment.proto, toByteOffset: 6, as: UInt8.self)
            p.storeBytes(of: UInt8(64), toByteOffset: 7, as: UInt8.self)
            p.storeBytes(of: d.key.srcHi.bigEndian, toByteOffset: 8, as: UInt64.self)
            p.storeBytes(of: d.key.srcLo.bigEndian, toByteOffset: 16, as: UInt64.self)
            p.storeBytes(of: d.key.dstHi.bigEndian, toByteOffset: 24, as: UInt64.self)
            p.storeBytes(of: d.key.dstLo.bigEndian, toByteOffset: 32, as: UInt64.self)
        } else {
            p.storeBytes(of: UInt8(0x45), toByteOffset: 0, as: UInt8.self)
            p.storeBytes(of: UInt8(0), toByteOffset: 1, as: UInt8.self)
            p.storeBytes(of: UInt16(20 + payloadLength).bigEndian, toByteOffset: 2, as: UInt16.self)
            p.storeBytes(of: UInt16(truncatingIfNeeded: d.fragment.id).bigEndian, toByteOffset: 4, as: UInt16.self)
            p.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
            p.storeBytes(of: UInt8(64), toByteOffset: 8, as: UInt8.self)
            p.storeBytes(of: d.fragment.proto, toByteOffset: 9, as: UInt8.self)
            p.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
            p.storeBytes(of: UInt32(truncatingIfNeeded: d.key.srcLo).bigEndian, toByteOffset: 12, as: UInt32.self)
            p.storeBytes(of: UInt32(truncatingIfNeeded: d.key.dstLo).bigEndian, toByteOffset: 16, as: UInt32.self)
        }
    }
}
