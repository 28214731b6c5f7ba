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
