import LBCore
import Synchronization

/// Every counter lb keeps, in one preallocated block of atomics.
///
/// The data-path thread is the only writer: it adds with a relaxed load and a relaxed store
/// (plain moves on x86, no locked instruction). The control thread reads with relaxed loads
/// for the stats. Nothing is allocated after start-up.
public final class Counters: @unchecked Sendable {
    /// Global counters (index into the block).
    public enum G: Int, CaseIterable {
        case received = 0, receivedBytes, nonIP, unparsed, truncated, subframes, opaqueLink
        case fragments, fragmentsHeld, fragmentsReassembled, fragmentsMerged, fragmentsUnmatched
        case fragmentsIncomplete, fragmentsEvicted, fragmentsNotHeld
        case badTails
        /// tenant tags added, of them with a folded id, and with a VLAN id another id had
        case tenantTagged, tenantFolded, tenantCollisions
        /// packets dropped as copies of one seen less than the dedup window earlier
        case deduplicated
    }

    /// Per-ring counters.
    public enum R: Int, CaseIterable {
        case forwarded = 0, forwardedBytes, droppedFull, droppedNoConsumer, droppedStalled, truncated
        /// packets (and their bytes) this ring would have received but a shunt stopped
        case shunted, shuntedBytes
        /// packets this ring would have received but its group's filter rejected; packets cut
        /// to the group's slice length
        case filtered, sliced
    }

    static let ringStride = 16         // room for R's cases
    static let encapBase = 32
    static let errorBase = encapBase + 16
    static let ringBase = errorBase + 64

    public let ringCount: Int
    let block: UnsafeMutablePointer<Atomic<UInt64>>
    let size: Int

    public init(ringCount: Int) {
        self.ringCount = ringCount
        precondition(R.allCases.count <= Self.ringStride)
        size = Self.ringBase + ringCount * Self.ringStride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: size * 8, alignment: 64)
        raw.initializeMemory(as: UInt64.self, repeating: 0, count: size)
        block = raw.bindMemory(to: Atomic<UInt64>.self, capacity: size)
    }

    deinit { UnsafeMutableRawPointer(block).deallocate() }

    @inline(__always)
    func add(_ i: Int, _ n: UInt64) {
        let v = block[i].load(ordering: .relaxed)
        block[i].store(v &+ n, ordering: .relaxed)
    }

    @inline(__always) public func add(_ c: G, _ n: UInt64 = 1) { add(c.rawValue, n) }
    @inline(__always) public func add(ring: Int, _ c: R, _ n: UInt64 = 1) {
        add(Self.ringBase &+ ring &* Self.ringStride &+ c.rawValue, n)
    }
    @inline(__always) public func add(encap: EncapKind) { add(Self.encapBase + Int(encap.rawValue), 1) }
    @inline(__always) public func add(error: ParseError) { add(Self.errorBase + Int(error.rawValue), 1) }

    /// Sets a counter the data path mirrors from elsewhere (fragment table, tails).
    @inline(__always) public func set(_ c: G, _ v: UInt64) { block[c.rawValue].store(v, ordering: .relaxed) }

    public func get(_ c: G) -> UInt64 { block[c.rawValue].load(ordering: .relaxed) }
    public func get(ring: Int, _ c: R) -> UInt64 { block[Self.ringBase + ring * Self.ringStride + c.rawValue].load(ordering: .relaxed) }
    public func get(encap: EncapKind) -> UInt64 { block[Self.encapBase + Int(encap.rawValue)].load(ordering: .relaxed) }
    public func get(error: ParseError) -> UInt64 { block[Self.errorBase + Int(error.rawValue)].load(ordering: .relaxed) }
}
