/// Flows an analyzer asked lb to stop sending (shunted), for one group.
///
/// A rule names a flow as the hash sees it (addresses, protocol, ports, and the VLAN/VNI value
/// the hash mixes in) and the directions to stop: Zeek's `shunt_flow` and dumbno shunt one
/// direction per rule, a worker usually both. Each entry counts the packets and bytes it stopped
/// per direction and ends after an idle timeout or a hard timeout (0: none), in packet time;
/// an ended entry's final counts are kept in a bounded list for the worker (`takeEnded`).
///
/// Fixed capacity, open addressing with linear probing and backward-shift deletion (no
/// tombstones, so probes stay short after churn); one owner (the dispatcher thread); no
/// allocation after `init`. An empty table is one comparison per packet (`isEmpty`).
public struct ShuntTable: ~Copyable {
    /// Directions of a flow, relative to its rule's canonical order (`Rule.a` < `Rule.b`).
    public struct Directions: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// from endpoint a to endpoint b
        public static let forward = Directions(rawValue: 1)
        /// from endpoint b to endpoint a
        public static let reverse = Directions(rawValue: 2)
        public static let both: Directions = [.forward, .reverse]
    }

    /// One end of a flow: a 128-bit address (IPv4 mapped) and a port (0 without ports).
    public struct Endpoint: Sendable, Hashable, Comparable {
        public var hi: UInt64
        public var lo: UInt64
        public var port: UInt16
        public init(hi: UInt64, lo: UInt64, port: UInt16) { self.hi = hi; self.lo = lo; self.port = port }
        public static func < (x: Endpoint, y: Endpoint) -> Bool {
            (x.hi, x.lo, x.port) < (y.hi, y.lo, y.port)
        }
    }

    /// A flow in canonical order, and what to do with it.
    public struct Rule: Sendable, Equatable {
        public var a: Endpoint
        public var b: Endpoint
        public var proto: UInt8
        /// the VLAN id or VNI the hash mixes in (0 when neither is part of the hash)
        public var extra: UInt32
        public var directions: Directions
        /// end the entry after this long without a shunted packet / this long after it was added (0: never)
        public var idleNanos: UInt64
        public var hardNanos: UInt64

        /// The rule for the flow of a packet from `src` to `dst`; `directions` are the packet's
        /// own (`.forward` = the direction of this packet) and are turned into canonical ones.
        public init(src: Endpoint, dst: Endpoint, proto: UInt8, extra: UInt32 = 0, directions: Directions = .both,
                    idleNanos: UInt64 = 0, hardNanos: UInt64 = 0) {
            let swap = dst < src
            a = swap ? dst : src
            b = swap ? src : dst
            self.proto = proto
            self.extra = extra
            var d = directions
            if swap && d != .both { d = d == .forward ? .reverse : .forward }
            self.directions = d
            self.idleNanos = idleNanos
            self.hardNanos = hardNanos
        }

        /// The rule for a decoded packet's flow (ports only when the key has them).
        public init(key: FlowKey, extra: UInt32 = 0, directions: Directions = .both, idleNanos: UInt64 = 0, hardNanos: UInt64 = 0) {
            let ports = key.kind == .ports
            self.init(src: Endpoint(hi: key.srcHi, lo: key.srcLo, port: ports ? key.sport : 0),
                      dst: Endpoint(hi: key.dstHi, lo: key.dstLo, port: ports ? key.dport : 0),
                      proto: key.proto, extra: extra, directions: directions, idleNanos: idleNanos, hardNanos: hardNanos)
        }

        @inline(__always)
        func sameFlow(_ o: Rule) -> Bool { a == o.a && b == o.b && proto == o.proto && extra == o.extra }
    }

    /// An entry as `list` shows it, and as it ended.
    public struct Entry: Sendable, Equatable {
        public var rule: Rule
        public var addedNanos: UInt64
        public var lastNanos: UInt64
        /// packets and bytes stopped, [forward, reverse]
        public var packets: (UInt64, UInt64)
        public var bytes: (UInt64, UInt64)
        public init(rule: Rule, addedNanos: UInt64 = 0, lastNanos: UInt64 = 0, packets: (UInt64, UInt64) = (0, 0),
                    bytes: (UInt64, UInt64) = (0, 0)) {
            self.rule = rule; self.addedNanos = addedNanos; self.lastNanos = lastNanos
            self.packets = packets; self.bytes = bytes
        }
        /// An empty entry (no flow), for replies that carry none.
        public static let none = Entry(rule: Rule(src: Endpoint(hi: 0, lo: 0, port: 0), dst: Endpoint(hi: 0, lo: 0, port: 0), proto: 0))
        public static func == (x: Entry, y: Entry) -> Bool {
            x.rule == y.rule && x.addedNanos == y.addedNanos && x.lastNanos == y.lastNanos
                && x.packets == y.packets && x.bytes == y.bytes
        }
    }

    public enum EndReason: UInt8, Sendable { case idle = 1, hard = 2, removed = 3, end = 4 }

    public struct Ended: Sendable, Equatable {
        public var entry: Entry
        public var reason: EndReason
    }

    public struct Counters: Sendable, Equatable {
        public var entries: UInt64 = 0
        public var added: UInt64 = 0
        /// requests refused because the table was full
        public var refused: UInt64 = 0
        public var expired: UInt64 = 0
        public var removed: UInt64 = 0
        public var packets: UInt64 = 0
        public var bytes: UInt64 = 0
        /// end reports dropped because nobody took them (the oldest go first)
        public var endReportsLost: UInt64 = 0
        public init() {}
    }

    public enum AddResult: Sendable, Equatable { case added, updated, full }

    struct Slot {
        var used = false
        var hash: UInt64 = 0
        var entry = Entry.none
    }

    let slots: UnsafeMutablePointer<Slot>
    let mask: Int
    /// entries allowed: 7/8 of the slots, so a probe always ends at an empty slot
    public let capacity: Int
    public private(set) var counters = Counters()
    let ended: UnsafeMutablePointer<Ended>
    let endedCapacity: Int
    var endedHead = 0, endedCount = 0
    /// where the next `expire` sweep starts
    var sweep = 0
    /// the flow hash's tuple mode and seeds (the dispatcher's)
    let mode: TupleMode
    let seeds: HashSeeds

    /// `capacity`: the most entries (rounded so that the slots are a power of two).
    public init(capacity: Int = 65536, endReports: Int = 4096, mode: TupleMode = .five, seeds: HashSeeds = .standard) {
        self.mode = mode
        self.seeds = seeds
        precondition(capacity >= 1 && endReports >= 1)
        var n = 8
        while n * 7 / 8 < capacity { n <<= 1 }
        slots = .allocate(capacity: n)
        slots.initialize(repeating: Slot(), count: n)
        mask = n - 1
        self.capacity = capacity
        ended = .allocate(capacity: endReports)
        endedCapacity = endReports
    }

    deinit {
        slots.deinitialize(count: mask + 1)
        slots.deallocate()
        ended.deallocate()
    }

    @inlinable
    public var isEmpty: Bool { count == 0 }
    public var count: Int { Int(counters.entries) }

    /// The flow hash of a rule's flow: the dispatcher's own (its tuple mode and seeds), so that
    /// a packet's hash is the index of its entry.
    func hash(_ r: Rule) -> UInt64 {
        var k = FlowKey()
        k.srcHi = r.a.hi; k.srcLo = r.a.lo; k.sport = r.a.port
        k.dstHi = r.b.hi; k.dstLo = r.b.lo; k.dport = r.b.port
        k.proto = r.proto
        k.kind = r.a.port != 0 || r.b.port != 0 || r.proto == 6 || r.proto == 17 ? .ports : .addresses
        return FlowHash.hash(k, mode: mode, extra: r.extra, seeds: seeds)
    }

    /// The same for a packet's key.
    public func flowHash(_ key: FlowKey, extra: UInt32) -> UInt64 {
        FlowHash.hash(key, mode: mode, extra: extra, seeds: seeds)
    }

    /// The slot holding this flow, or nil.
    func find(_ r: Rule, hash h: UInt64) -> Int? {
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i].used {
            if slots[i].hash == h && slots[i].entry.rule.sameFlow(r) { return i }
            i = (i + 1) & mask
        }
        return nil
    }

    /// Adds a rule, or updates the directions and timeouts of the flow's entry (its counts stay).
    public mutating func add(_ r: Rule, now: UInt64) -> AddResult {
        let h = hash(r)
        if let i = find(r, hash: h) {
            slots[i].entry.rule.directions.formUnion(r.directions)
            slots[i].entry.rule.idleNanos = r.idleNanos
            slots[i].entry.rule.hardNanos = r.hardNanos
            return .updated
        }
        guard count < capacity else {
            counters.refused &+= 1
            return .full
        }
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i].used { i = (i + 1) & mask }
        slots[i] = Slot(used: true, hash: h, entry: Entry(rule: r, addedNanos: now, lastNanos: now, packets: (0, 0), bytes: (0, 0)))
        counters.entries &+= 1
        counters.added &+= 1
        return .added
    }

    /// Removes the flow's entry (the directions of `r` are ignored); its final counts are
    /// returned and reported as ended.
    @discardableResult
    public mutating func remove(_ r: Rule) -> Entry? {
        guard let i = find(r, hash: hash(r)) else { return nil }
        counters.removed &+= 1
        return end(at: i, reason: .removed)
    }

    /// A packet's entry, as `match` finds it.
    public struct Match {
        public let slot: Int
        /// the packet goes from a to b
        public let forward: Bool
        /// the entry stops the packet's direction
        public let stops: Bool
    }

    /// The entry of a packet's flow (`hash`: the packet's flow hash, which the table's index
    /// uses), or nil. An entry past its timeouts ends here (the packet goes on).
    @inline(__always)
    public mutating func match(_ key: FlowKey, extra: UInt32, hash: UInt64, now: UInt64) -> Match? {
        if isEmpty { return nil }
        return lookup(key, extra: extra, hash: hash, now: now)
    }

    @inline(never)
    mutating func lookup(_ key: FlowKey, extra: UInt32, hash: UInt64, now: UInt64) -> Match? {
        let ports = key.kind == .ports
        let src = Endpoint(hi: key.srcHi, lo: key.srcLo, port: ports ? key.sport : 0)
        let dst = Endpoint(hi: key.dstHi, lo: key.dstLo, port: ports ? key.dport : 0)
        let r = Rule(src: src, dst: dst, proto: key.proto, extra: extra)
        guard let i = find(r, hash: hash) else { return nil }
        stamp(i, now: now)
        if let why = Self.expiry(slots[i].entry, now: now) {
            counters.expired &+= 1
            end(at: i, reason: why)
            return nil
        }
        let forward = !(dst < src)            // canonical a -> b
        return Match(slot: i, forward: forward, stops: slots[i].entry.rule.directions.contains(forward ? .forward : .reverse))
    }

    /// Counts a packet an entry stopped: `ipBytes` of it, at `now`.
    @inline(__always)
    public mutating func count(_ m: Match, ipBytes: Int, now: UInt64) {
        let n = UInt64(truncatingIfNeeded: ipBytes)
        if m.forward {
            slots[m.slot].entry.packets.0 &+= 1
            slots[m.slot].entry.bytes.0 &+= n
        } else {
            slots[m.slot].entry.packets.1 &+= 1
            slots[m.slot].entry.bytes.1 &+= n
        }
        slots[m.slot].entry.lastNanos = now
        counters.packets &+= 1
        counters.bytes &+= n
    }

    /// Whether a packet of `key` going in its own direction is shunted; counts it if so.
    /// `control`: a TCP SYN, FIN or RST, which is never shunted (the analyzer still sees how the
    /// connection ends). (The data path uses `match` and `count`, with the flow hash it has.)
    public mutating func shunts(_ key: FlowKey, extra: UInt32, bytes: Int, now: UInt64, control: Bool) -> Bool {
        guard let m = match(key, extra: extra, hash: flowHash(key, extra: extra), now: now), m.stops, !control else { return false }
        count(m, ipBytes: bytes, now: now)
        return true
    }

    /// An entry added before the data path saw any packet (a live input that was idle: its
    /// clock, the packets' time, was still 0) starts its timeouts at the first time it sees.
    @inline(__always)
    mutating func stamp(_ i: Int, now: UInt64) {
        if slots[i].entry.addedNanos == 0 && now != 0 {
            slots[i].entry.addedNanos = now
            slots[i].entry.lastNanos = max(slots[i].entry.lastNanos, now)
        }
    }

    static func expiry(_ e: Entry, now: UInt64) -> EndReason? {
        if e.rule.hardNanos != 0 && now &- e.addedNanos >= e.rule.hardNanos && now >= e.addedNanos { return .hard }
        if e.rule.idleNanos != 0 && now &- e.lastNanos >= e.rule.idleNanos && now >= e.lastNanos { return .idle }
        return nil
    }

    /// Adds what an earlier stage (lb's XDP program) stopped of the flow's packets, a to b and b
    /// to a, and counts it as a shunted packet just now (so the idle timeout sees the flow
    /// alive). False if the flow has no entry.
    @discardableResult
    public mutating func credit(_ r: Rule, packets: (UInt64, UInt64), bytes: (UInt64, UInt64), now: UInt64) -> Bool {
        guard let i = find(r, hash: hash(r)) else { return false }
        stamp(i, now: now)
        slots[i].entry.packets.0 &+= packets.0
        slots[i].entry.packets.1 &+= packets.1
        slots[i].entry.bytes.0 &+= bytes.0
        slots[i].entry.bytes.1 &+= bytes.1
        if packets.0 &+ packets.1 > 0 { slots[i].entry.lastNanos = now }
        counters.packets &+= packets.0 &+ packets.1
        counters.bytes &+= bytes.0 &+ bytes.1
        return true
    }

    /// Ends entries past their timeouts, looking at `budget` slots from where the last sweep
    /// stopped (the dispatcher calls it once per batch, so the cost is bounded and spread).
    public mutating func expire(now: UInt64, budget: Int = 64) {
        if isEmpty { return }
        var looked = 0
        while looked < budget && looked <= mask {
            let i = sweep & mask
            if slots[i].used { stamp(i, now: now) }
            if slots[i].used, let why = Self.expiry(slots[i].entry, now: now) {
                counters.expired &+= 1
                end(at: i, reason: why)       // a later entry may have moved into i: look again
            } else {
                sweep &+= 1
            }
            looked += 1
        }
    }

    /// Ends up to `max` entries (the input ended), each reported with `reason`; returns how
    /// many ended. The caller takes the reports (`takeEnded`) between calls, so none is lost.
    public mutating func endSome(reason: EndReason, max: Int) -> Int {
        var n = 0
        var i = 0
        while n < max && !isEmpty && i <= mask {
            if slots[i].used { end(at: i, reason: reason); n += 1 } else { i += 1 }   // a later entry may have moved into i
        }
        return n
    }

    /// Every entry, in slot order (for `lb shunt list`; allocates, so not for the data path).
    public func list() -> [Entry] {
        var out: [Entry] = []
        out.reserveCapacity(count)
        for i in 0...mask where slots[i].used { out.append(slots[i].entry) }
        return out
    }

    /// The entries that ended since the last call, oldest first.
    public mutating func takeEnded() -> [Ended] {
        var out: [Ended] = []
        out.reserveCapacity(endedCount)
        while endedCount > 0 {
            out.append(ended[endedHead])
            endedHead = (endedHead + 1) % endedCapacity
            endedCount -= 1
        }
        return out
    }

    /// Keeps an end report for `takeEnded`; past the list's capacity the oldest is lost (counted).
    mutating func record(_ report: Ended) {
        if endedCount == endedCapacity {
            endedHead = (endedHead + 1) % endedCapacity
            endedCount -= 1
            counters.endReportsLost &+= 1
        }
        (ended + (endedHead + endedCount) % endedCapacity).initialize(to: report)
        endedCount += 1
    }

    /// Ends the entry at slot `i`: reports it, and closes the gap so that every probe still
    /// reaches its entry (backward shift).
    @discardableResult
    mutating func end(at i: Int, reason: EndReason) -> Entry {
        let e = slots[i].entry
        record(Ended(entry: e, reason: reason))
        var hole = i
        var j = (i + 1) & mask
        while slots[j].used {
            let home = Int(truncatingIfNeeded: slots[j].hash) & mask
            // j's entry may move into the hole if its home is not cyclically in (hole, j]
            let movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j)
            if movable {
                slots[hole] = slots[j]
                hole = j
            }
            j = (j + 1) & mask
        }
        slots[hole] = Slot()
        counters.entries &-= 1
        return e
    }
}
