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
