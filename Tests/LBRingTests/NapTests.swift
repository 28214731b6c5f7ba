import LBRing
import Testing

/// The nap policy with a made-up clock: how long a reader that emptied its ring sleeps.
@Suite struct NapTests {
    static let ms: UInt64 = 1_000_000

    @Test func idleReaderNeverNaps() {
        var nap = Nap(maxNanos: 10 * Self.ms, roomPackets: 1000)
        #expect(nap.next(now: 1 * Self.ms) == 0)
        #expect(!nap.napping)
    }

    @Test func napsGrowFromShortToTheMaximum() {
        var nap = Nap(maxNanos: 10 * Self.ms, firstNanos: 50_000, roomPackets: 1 << 20)
        var now: UInt64 = 1 * Self.ms
        var naps: [UInt64] = []
        for _ in 0..<12 {
            nap.count(packets: 10, bytes: 1000)      // a trickle: room is never the limit
            let d = nap.next(now: now)
            naps.append(d)
            now &+= d &+ 10_000
        }
        #expect(naps.first == 50_000)
        #expect(naps == naps.sorted())
        #expect(naps.last == 10 * Self.ms)
        #expect(nap.napping)
    }

    @Test func napNeverOutlastsTheRoomAtTheRateSeen() {
        // 1 Mpps into a ring with room for 2,000 packets: at most 2 ms
        var nap = Nap(maxNanos: 10 * Self.ms, firstNanos: 10 * Self.ms, roomPackets: 2000)
        nap.count(packets: 1, bytes: 100)
        var now: UInt64 = 1 * Self.ms
        #expect(nap.next(now: now) == 10 * Self.ms)       // no rate known yet: the first nap
        now &+= 10 * Self.ms
        nap.count(packets: 10_000, bytes: 1_000_000)      // 10,000 packets in 10 ms
        #expect(nap.next(now: now) == 2 * Self.ms)
        // and by bytes: 100 MB/s into room for 50 kB is 0.5 ms
        var byBytes = Nap(maxNanos: 10 * Self.ms, firstNanos: 10 * Self.ms, roomPackets: 1 << 30, roomBytes: 50_000)
        byBytes.count(packets: 1, bytes: 1)
        _ = byBytes.next(now: 1 * Self.ms)
        byBytes.count(packets: 1000, bytes: 1_000_000)
        #expect(byBytes.next(now: 11 * Self.ms) == 500_000)
    }

    @Test func emptyNapsLengthenThenHandBackToWaking() {
        var nap = Nap(maxNanos: 4 * Self.ms, firstNanos: 1 * Self.ms, roomPackets: 1 << 20)
        nap.count(packets: 5, bytes: 500)
        var now: UInt64 = 1 * Self.ms
        #expect(nap.next(now: now) == 1 * Self.ms)
        now &+= 1 * Self.ms
        #expect(nap.next(now: now) == 2 * Self.ms)         // found nothing: a longer nap
        now &+= 2 * Self.ms
        #expect(nap.next(now: now) == 4 * Self.ms)
        now &+= 4 * Self.ms
        #expect(nap.next(now: now) == 0)                   // 7 ms of nothing: wait to be woken
        #expect(!nap.napping)
        // traffic again: back to the first, short nap
        nap.count(packets: 1, bytes: 100)
        #expect(nap.next(now: now &+ 1000) == 1 * Self.ms)
    }

    @Test func aMaximumBelowTheFirstNapBoundsItToo() {
        var nap = Nap(maxNanos: 10 * Self.ms, firstNanos: 50_000, roomPackets: 1000)
        nap.maxNanos = 20_000        // a worker asking for at most 20 µs (lb_worker_options.nap_us)
        nap.count(packets: 1, bytes: 100)
        #expect(nap.next(now: 1 * Self.ms) == 20_000)
    }

    @Test func maxZeroTurnsNappingOff() {
        var nap = Nap(maxNanos: 0, roomPackets: 1000)
        nap.count(packets: 100, bytes: 10_000)
        #expect(nap.next(now: 5 * Self.ms) == 0)
    }
}
