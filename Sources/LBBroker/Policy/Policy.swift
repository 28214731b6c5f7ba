/// What one group receives (issue 17): only the packets its filter selects, each cut to its
/// slice length. The default takes everything whole.
public struct GroupPolicy: Sendable {
    /// tcpdump's language, applied to the packet as the group receives it (after
    /// decapsulation, with the tenant tag when there is one)
    public var filter: PacketFilter? = nil
    /// keep the first `slice` bytes of each packet (0: whole); the wire length stays
    public var slice = 0
    public init(filter: PacketFilter? = nil, slice: Int = 0) {
        self.filter = filter
        self.slice = slice
    }
    var isDefault: Bool { filter == nil && slice == 0 }
}

/// Tenant context across decapsulation: the delivered frame gets an 802.1Q tag whose VLAN id
/// says which tunnel (or outer VLAN) the packet came from, so analyzers that key connections
/// on the VLAN keep overlapping tenant address spaces apart.
public struct TenantTag: Sendable {
    public enum Source: String, Sendable, CaseIterable {
        /// the innermost tunnel's id: VXLAN/GENEVE VNI, GRE key, ERSPAN session, GTP-U TEID
        case vni
        /// the outermost VLAN of the frame as it arrived
        case vlan
    }
    public var source: Source
    /// ids that are not VLAN ids (0, above 4094), or that should be another one: id → VLAN
    public var map: [UInt32: UInt16]
    public init(source: Source, map: [UInt32: UInt16] = [:]) {
        self.source = source
        self.map = map
    }

    /// The VLAN id for tunnel id `id`, and whether it had to be folded (no map entry and not
    /// a VLAN id itself: `(id - 1) mod 4094 + 1`, which may collide with another id's).
    @inline(__always)
    static func vlan(for id: UInt32, in table: UnsafePointer<MapEntry>, count: Int) -> (vlan: UInt16, folded: Bool) {
        if count > 0 {
            // a small sorted table, searched without allocating
            var lo = 0, hi = count
            while lo < hi {
                let mid = (lo &+ hi) >> 1
                if table[mid].id < id { lo = mid &+ 1 } else { hi = mid }
            }
            if lo < count && table[lo].id == id { return (table[lo].vlan, false) }
        }
        if id >= 1 && id <= 4094 { return (UInt16(id), false) }
        return (UInt16(truncatingIfNeeded: (id &- 1) % 4094 &+ 1), true)
    }

    struct MapEntry { var id: UInt32; var vlan: UInt16 }

    /// The map as a sorted table for the data path.
    func table() -> [MapEntry] { map.map { MapEntry(id: $0.key, vlan: $0.value) }.sorted { $0.id < $1.id } }

    /// Map entries that make two ids share a VLAN id (from the command line alone), for a
    /// warning at start: each pair (id, other id, VLAN).
    public func clashes() -> [(UInt32, UInt32, UInt16)] {
        var out: [(UInt32, UInt32, UInt16)] = []
        var byVLAN: [UInt16: UInt32] = [:]
        for (id, v) in map.sorted(by: { $0.key < $1.key }) {
            if let other = byVLAN[v] { out.append((other, id, v)) } else { byVLAN[v] = id }
        }
        for (v, id) in byVLAN.sorted(by: { $0.key < $1.key }) where map[UInt32(v)] == nil && UInt32(v) != id {
            out.append((UInt32(v), id, v))           // id v itself would keep VLAN v
        }
        return out
    }
}
