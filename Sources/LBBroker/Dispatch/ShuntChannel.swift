import LBCore
import Synchronization

/// Shunt requests from the control thread to one data-path thread, and what that thread
/// reports back: two single-producer single-consumer rings of fixed-size records, and the
/// per-group table counters it mirrors. The data path looks at it once per batch (one relaxed
/// load when nothing is pending): no lock, no allocation.
public final class ShuntChannel: @unchecked Sendable {
    public enum Op: UInt8, Sendable {
        case add = 1, remove, list
        /// what the XDP program dropped of the flow since the last credit (`packets`, `bytes`)
        case credit
    }

    public struct Command: Sendable {
        public var op: Op
        public var group: Int
        public var rule: ShuntTable.Rule
        /// echoed in the replies, so the control thread can match them to its client
        public var token: UInt64
        /// for `credit`: a to b, b to a
        public var packets: (UInt64, UInt64) = (0, 0)
        public var bytes: (UInt64, UInt64) = (0, 0)
        public init(op: Op, group: Int, rule: ShuntTable.Rule, token: UInt64) {
            self.op = op; self.group = group; self.rule = rule; self.token = token
        }
    }

    public enum ReplyKind: UInt8, Sendable {
        case added = 1, updated, full, removed, notFound
        /// one entry of a list (`entry`); `listEnd` follows the last one, with the count in `total`
        case listEntry, listEnd
        /// an entry ended (timeout or removal): its final counts, for the worker
        case ended
    }

    public struct Reply: Sendable {
        public var kind: ReplyKind
        public var group: Int
        public var token: UInt64
        public var entry: ShuntTable.Entry
        public var reason: ShuntTable.EndReason
        public var total: Int
    }

    /// Table counters per group, as `ShuntTable.Counters` (entries, added, refused, expired,
    /// removed, packets, bytes, endReportsLost), mirrored by the data path.
    public static let statsPerGroup = 8

    public let groupCount: Int
    let commands: SPSCRing<Command>
    let replies: SPSCRing<Reply>
    let stats: UnsafeMutablePointer<Atomic<UInt64>>

    public init(groupCount: Int, commandCapacity: Int = 1024, replyCapacity: Int = 16384) {
        self.groupCount = groupCount
        commands = SPSCRing(capacity: commandCapacity)
        replies = SPSCRing(capacity: replyCapacity)
        stats = .allocate(capacity: max(1, groupCount * Self.statsPerGroup))
        for i in 0..<max(1, groupCount * Self.statsPerGroup) { (stats + i).initialize(to: Atomic(0)) }
    }

    deinit { stats.deallocate() }

    // MARK: control side

    /// Queues a command; false when the data path has not taken the earlier ones yet.
    public func send(_ c: Command) -> Bool { commands.push(c) }

    /// The next reply, if any.
    public func receive() -> Reply? { replies.pop() }

    /// The table counters of group `g`, as the data path last mirrored them.
    public func counters(group g: Int) -> ShuntTable.Counters {
        let b = stats + g * Self.statsPerGroup
        var c = ShuntTable.Counters()
        c.entries = b[0].load(ordering: .relaxed)
        c.added = b[1].load(ordering: .relaxed)
        c.refused = b[2].load(ordering: .relaxed)
        c.expired = b[3].load(ordering: .relaxed)
        c.removed = b[4].load(ordering: .relaxed)
        c.packets = b[5].load(ordering: .relaxed)
        c.bytes = b[6].load(ordering: .relaxed)
        c.endReportsLost = b[7].load(ordering: .relaxed)
        return c
    }

    // MARK: data-path side

    @inline(__always)
    var hasCommands: Bool { commands.hasItems }

    func nextCommand() -> Command? { commands.pop() }

    /// Queues a reply; a reply that finds the ring full is lost (the caller counts it).
    func reply(_ r: Reply) -> Bool { replies.push(r) }

    func mirror(group g: Int, _ c: ShuntTable.Counters) {
        let b = stats + g * Self.statsPerGroup
        b[0].store(c.entries, ordering: .relaxed)
        b[1].store(c.added, ordering: .relaxed)
        b[2].store(c.refused, ordering: .relaxed)
        b[3].store(c.expired, ordering: .relaxed)
        b[4].store(c.removed, ordering: .relaxed)
        b[5].store(c.packets, ordering: .relaxed)
        b[6].store(c.bytes, ordering: .relaxed)
        b[7].store(c.endReportsLost, ordering: .relaxed)
    }
}

/// A bounded single-producer single-consumer ring of plain values: the producer publishes with
/// a release store of `head`, the consumer frees with a release store of `tail`.
final class SPSCRing<T>: @unchecked Sendable {
    let slots: UnsafeMutablePointer<T>
    let capacity: Int
    let head = Atomic<Int>(0)        // next slot to write (producer)
    let tail = Atomic<Int>(0)        // next slot to read (consumer)

    init(capacity: Int) {
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
    }

    deinit {
        var t = tail.load(ordering: .relaxed)
        let h = head.load(ordering: .relaxed)
        while t != h { (slots + t % capacity).deinitialize(count: 1); t += 1 }
        slots.deallocate()
    }

    var hasItems: Bool { head.load(ordering: .acquiring) != tail.load(ordering: .relaxed) }

    func push(_ v: T) -> Bool {
        let h = head.load(ordering: .relaxed)
        guard h - tail.load(ordering: .acquiring) < capacity else { return false }
        (slots + h % capacity).initialize(to: v)
        head.store(h + 1, ordering: .releasing)
        return true
    }

    func pop() -> T? {
        let t = tail.load(ordering: .relaxed)
        guard t != head.load(ordering: .acquiring) else { return nil }
        let v = (slots + t % capacity).move()
        tail.store(t + 1, ordering: .releasing)
        return v
    }
}
