import LBBroker

extension Arguments {
    /// `--dedup WINDOW`: `on` (1 ms), or a time with a unit (`1ms`, `500us`, `2s`) or in
    /// seconds (`0.002`); 1 µs to 10 s. Returns nanoseconds.
    static func dedupWindow(_ text: String) throws -> UInt64 {
        if text == "on" { return 1_000_000 }
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9)]
        var number = Substring(text), scale = 1e9
        for (suffix, s) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = s
            break
        }
        guard let v = Double(number), v.isFinite, v > 0 else {
            throw ArgumentProblem("expected on, or a window such as 1ms, 500us or 0.002 (seconds)")
        }
        let nanos = v * scale
        guard nanos >= 1000, nanos <= Double(DedupTable.maxWindowNanos) else { throw ArgumentProblem("the window must be 1us to 10s") }
        return UInt64(nanos.rounded())
    }
}
