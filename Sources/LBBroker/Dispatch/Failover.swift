import Synchronization

/// The bucket → ring tables of every group, shared by all data-path threads.
///
/// Buckets are the top 12 bits of the flow hash. Entry `b` of group `g` holds the ring (0 ..
/// N-1 within the group) that gets the flows of bucket b. The data path only loads entries
/// (relaxed: a plain load on x86 and arm64); the control thread alone stores them, one entry at
/// a time, so a data-path thread never waits and never sees a torn entry. A packet that races
/// with a move goes to the old or to the new ring, both live.
public final class BucketTables: @unchecked Sendable {
    public static let buckets = IndirectionTable.size
    /// per group: its first ring's global index, and its ring count
    public let firstRing: [Int]
    public let ringCount: [Int]
    let entries: UnsafeMutablePointer<Atomic<UInt16>>

    /// `groupSizes`: rings per group, in the order the dispatcher numbers them.
    public init(groupSizes: [Int]) {
        var first: [Int] = []
        var r = 0
        for n in groupSizes {
            precondition(n >= 1 && n <= Int(UInt16.max))
            first.append(r)
            r += n
        }
        firstRing = first
        ringCount = groupSizes
        let total = groupSizes.count * Self.buckets
        entries = .allocate(capacity: max(total, 1))
        for (g, n) in groupSizes.enumerated() {
            for b in 0..<Self.buckets { (entries + g * Self.buckets + b).initialize(to: Atomic(UInt16(Self.home(b, n)))) }
        }
    }

    deinit {
        entries.deinitialize(count: firstRing.count * Self.buckets)
        entries.deallocate()
    }

    public var groupCount: Int { firstRing.count }

    /// The ring (within its group) a bucket belongs to when every ring is live.
    @inline(__always)
    public static func home(_ bucket: Int, _ rings: Int) -> Int { bucket % rings }

    /// The bucket of a flow hash.
    @inline(__always)
    public static func bucket(_ hash: UInt64) -> Int { Int(truncatingIfNeeded: hash >> UInt64(64 - IndirectionTable.bits)) }

    /// Group g's table (what the data path reads).
    func table(_ g: Int) -> UnsafeMutablePointer<Atomic<UInt16>> { entries + g * Self.buckets }

    /// The ring (within group g) bucket b goes to now.
    public func ring(group g: Int, bucket b: Int) -> Int { Int(table(g)[b].load(ordering: .relaxed)) }

    /// How many buckets each ring of group g holds now.
    public func bucketCounts(group g: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: ringCount[g])
        for b in 0..<Self.buckets { counts[ring(group: g, bucket: b)] += 1 }
        return counts
    }
}

/// Moves the buckets of failed rings to the live rings of their group, and back.
///
/// The rule, per group, whenever the set of live rings changes:
///   - a bucket whose home ring is live goes (back) to its home ring;
///   - a bucket whose home ring is down stays where it is if that ring is live;
///   - the others (the buckets of a ring that just failed, or that sat on it) go one by one to
///     the live ring holding the fewest buckets.
/// So when one ring of N fails exactly its buckets (1/N of the flows) move, spread evenly over
/// the others; when it returns exactly its buckets move back; no other flow ever moves.
/// Runs on the control thread only.
public final class Failover: @unchecked Sendable {
    public let tables: BucketTables
    /// per global ring: live as last applied
    public private(set) var live: [Bool]
    /// bucket moves made so far, per group
    public private(set) var moves: [UInt64]
    /// times a ring was failed over (its buckets moved away), per global ring
    public private(set) var failovers: [UInt64]
    /// per global ring: buckets it holds now
    public private(set) var held: [Int]

    public init(tables: BucketTables) {
        self.tables = tables
        let total = tables.ringCount.reduce(0, +)
        live = Array(repeating: true, count: total)
        moves = Array(repeating: 0, count: tables.groupCount)
        failovers = Array(repeating: 0, count: total)
        held = []
        for g in 0..<tables.groupCount { held += tables.bucketCounts(group: g) }
    }

    /// Applies a new set of live rings (indexed by global ring). Returns the buckets moved.
    @discardableResult
    public func apply(live newLive: [Bool]) -> Int {
        precondition(newLive.count == live.count)
        var moved = 0
        for g in 0..<tables.groupCount {
            let first = tables.firstRing[g], n = tables.ringCount[g]
            let before = Array(live[first..<first + n]), after = Array(newLive[first..<first + n])
            if before == after { continue }
            for k in 0..<n where before[k] && !after[k] { failovers[first + k] += 1 }
            let m = rebalance(group: g, live: after)
            moves[g] += UInt64(m)
            moved += m
        }
        live = newLive
        return moved
    }

    func rebalance(group g: Int, live: [Bool]) -> Int {
        let n = tables.ringCount[g], first = tables.firstRing[g]
        guard live.contains(true) else { return 0 }     // nowhere to go: leave the table (drops are counted)
        let table = tables.table(g)
        var target = [Int](repeating: -1, count: BucketTables.buckets)
        var load = [Int](repeating: 0, count: n)
        for b in 0..<BucketTables.buckets {
            let home = BucketTables.home(b, n), now = Int(table[b].load(ordering: .relaxed))
            if live[home] { target[b] = home } else if now < n && live[now] { target[b] = now }
            if target[b] >= 0 { load[target[b]] += 1 }
        }
        for b in 0..<BucketTables.buckets where target[b] < 0 {
            var best = -1
            for k in 0..<n where live[k] && (best < 0 || load[k] < load[best]) { best = k }
            target[b] = best
            load[best] += 1
        }
        var moved = 0
        for b in 0..<BucketTables.buckets where Int(table[b].load(ordering: .relaxed)) != target[b] {
            table[b].store(UInt16(target[b]), ordering: .relaxed)
            moved += 1
        }
        for k in 0..<n { held[first + k] = load[k] }
        return moved
    }
}

/// `--failover`: when a failed ring's buckets move.
public enum FailoverMode: Sendable, Equatable {
    /// on (after 5 s) for live input, off for a capture replay
    case auto
    case off
    /// after a consumer has been gone or stuck this many seconds
    case after(Double)

    public static let liveDefaultSeconds = 5.0

    /// The delay in seconds, or nil when failover is off, for a source that is live or not.
    public func seconds(live: Bool) -> Double? {
        switch self {
        case .auto: live ? Self.liveDefaultSeconds : nil
        case .off: nil
        case .after(let s): s
        }
    }
}
