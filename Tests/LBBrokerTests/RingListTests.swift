@testable import LBBroker
import LBRing
import Testing

@Suite struct RingListTests {
    static func names(_ g: String, _ r: ClosedRange<Int>) -> [RingName] { r.map { RingName(group: g, index: $0) } }

    @Test func rangesAndLimit() {
        #expect(RingList.summary(Self.names("z", 0...511) + Self.names("y", 0...511)) == "z:0-511 y:0-511")
        #expect(RingList.summary(Self.names("a", 0...0) + Self.names("a", 2...3)) == "a:0 a:2-3")
        // every other ring: no ranges; the line stops and says how many more
        let sparse = stride(from: 0, to: 1024, by: 2).map { RingName(group: "zeek", index: $0) }
        let s = RingList.summary(sparse, limit: 100)
        #expect(s.count < 140 && s.hasSuffix("more"), "\(s)")
        let shown = s.split(separator: " ").filter { $0.hasPrefix("zeek:") }.count
        #expect(s.hasSuffix("and \(512 - shown) more"), "\(s)")
    }
}
