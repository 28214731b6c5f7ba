import LBCore

extension Counters {
    /// A new block holding the sum of several (one per data-path thread), for a report.
    /// Runs on the control thread; allocates once per report, never on the data path.
    static func sum(_ parts: [Counters]) -> Counters {
        let out = Counters(ringCount: parts[0].ringCount)
        for p in parts {
            for i in 0..<min(p.size, out.size) { out.add(i, p.block[i].load(ordering: .relaxed)) }
        }
        return out
    }
}

extension Counters {
    /// Tunnels removed, by kind (the stats' `decapsulated` object, Prometheus' encap label).
    func decapsulatedByKind() -> [(String, UInt64)] {
        EncapKind.allCases.filter { $0 != .none }.map { ($0.name, get(encap: $0)) }
    }

    /// Packets that did not parse, by reason (`unparsed`).
    func unparsedByReason() -> [(String, UInt64)] {
        ParseError.allCases.filter { $0 != .none }.map { ($0.name, get(error: $0)) }
    }

    /// The fragment table's counters under their stats names (`fragments`).
    func fragmentCounts() -> [(String, UInt64)] {
        [("seen", get(.fragments)), ("held", get(.fragmentsHeld)), ("reassembled", get(.fragmentsReassembled)),
         ("merged", get(.fragmentsMerged)), ("unmatched", get(.fragmentsUnmatched)),
         ("incomplete", get(.fragmentsIncomplete)), ("evicted", get(.fragmentsEvicted)),
         ("not_held", get(.fragmentsNotHeld))]
    }
}
