import LBGen
import Testing

/// lb gen's traces are reproducible: the same seed and options give the same bytes.
@Suite struct SeedTests {
    @Test func sameSeedSameTrace() {
        let a = TrafficSynth.generate(SynthConfig(seed: 7, flows: 50, packets: 500))
        let b = TrafficSynth.generate(SynthConfig(seed: 7, flows: 50, packets: 500))
        let c = TrafficSynth.generate(SynthConfig(seed: 8, flows: 50, packets: 500))
        #expect(a.count == 500)
        #expect(a.map(\.bytes) == b.map(\.bytes))
        #expect(a.map(\.bytes) != c.map(\.bytes))
    }
}

@Suite struct ElephantTraceTests {
    /// `lb gen --mode elephants`: 2% of the flows carry 90% of the packets, all TCP.
    @Test func twoPercentOfTheFlowsCarryNinetyPercent() {
        let trace = TrafficSynth.generate(SynthConfig(seed: 5, flows: 500, packets: 50_000, mode: .elephants))
        #expect(trace.count == 50_000)
        var perFlow: [Int: Int] = [:]
        for p in trace { perFlow[p.flowIndex, default: 0] += 1 }
        #expect(perFlow.count == 500)
        let top = perFlow.values.sorted(by: >).prefix(10).reduce(0, +)
        #expect(abs(Double(top) / 50_000 - 0.9) < 0.01, "top 2% carry \(top)")
        #expect(trace.allSatisfy { $0.kind == .tcp })
    }
}
