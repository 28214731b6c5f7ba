import CLBShim
import LBCore
import Synchronization

/// The window of recent packet digests that deduplication checks (docs/dedup.md), shared by
/// every data-path thread (one per RX queue): copies of one packet that arrive on different
/// queues or inputs meet here.
///
/// A fixed power-of-two array of 64-bit atomic words, made once at start, in buckets of four
/// words (32 bytes, two buckets per cache line). A word holds a digest's tag (its top 36 bits,
/// never 0) and the packet's time in µs modulo 2^28 (about 268 s); 0 is an empty word. The
/// bucket comes from the digest's low bits. A packet is a duplicate when its bucket holds its
/// tag with a time less than the window away (either way: copies on two queues may be taken in
/// either order). Otherwise it is written, by compare-exchange, into the bucket's empty or
/// oldest word; a lost race re-examines the bucket once (the winner may be its own copy).
/// No lock, no allocation; relaxed ordering (a word is its own datum).
public final class DedupTable: @unchecked Sendable {
    static let timeBits: UInt64 = 28
    static let timeMask: UInt64 = (1 << timeBits) - 1
    static let bucketWords = 4
    /// the longest window: well inside half the coarse clock's period
    public static let maxWindowNanos: UInt64 = 10_000_000_000

    let words: UnsafeMutablePointer<Atomic<UInt64>>
    let bucketMask: UInt64
    public let windowNanos: UInt64
    let windowMicros: UInt64
    public let wordCount: Int
    /// the digests' key, drawn at start unless given
    public let key: PacketDigestKey

    /// `windowNanos`: 1 µs to 10 s; `wordCount`: a power of two, 4 or more.
    public init(windowNanos: UInt64, wordCount: Int = 1 << 18, key: PacketDigestKey? = nil) {
        self.key = key ?? PacketDigestKey(seed: UInt64.random(in: .min ... .max))
        precondition(windowNanos >= 1000 && windowNanos <= Self.maxWindowNanos)
        precondition(wordCount >= Self.bucketWords && wordCount & (wordCount - 1) == 0)
        self.windowNanos = windowNanos
        windowMicros = windowNanos / 1000
        self.wordCount = wordCount
        bucketMask = UInt64(wordCount / Self.bucketWords - 1)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: wordCount * 8, alignment: 64)
        raw.initializeMemory(as: UInt64.self, repeating: 0, count: wordCount)
        words = raw.bindMemory(to: Atomic<UInt64>.self, capacity: wordCount)
    }

    deinit { UnsafeMutableRawPointer(words).deallocate() }

    /// Asks for the digest's bucket to be brought into the cache (a batch asks for all of its
    /// buckets first: their cache misses overlap instead of coming one after the other).
    @inline(__always)
    public func prefetch(digest: UInt64) {
        lb_shim_prefetch(UnsafeRawPointer(words + Int(truncatingIfNeeded: (digest & bucketMask) &* UInt64(Self.bucketWords))))
    }

    /// Whether a packet with this digest and time (ns) was seen less than the window ago;
    /// if not, it is recorded.
    @inline(__always)
    public func isDuplicate(digest: UInt64, timestampNanos: UInt64) -> Bool {
        let t = digest >> Self.timeBits
        let tag = t != 0 ? t : 1                               // never 0: 0 is an empty word
        let now = (timestampNanos / 1000) & Self.timeMask
        let word = tag << Self.timeBits | now
        let bucket = words + Int(truncatingIfNeeded: (digest & bucketMask) &* UInt64(Self.bucketWords))
        guard let victim = examine(bucket, tag: tag, now: now) else { return true }
        if bucket[victim.index].compareExchange(expected: victim.seen, desired: word, ordering: .relaxed).exchanged { return false }
        // Another thread wrote that word since: maybe this packet's own copy. Once more.
        guard let again = examine(bucket, tag: tag, now: now) else { return true }
        _ = bucket[again.index].compareExchange(expected: again.seen, desired: word, ordering: .relaxed)
        return false
    }

    /// nil: the bucket holds `tag` within the window. Else the word to replace: the first
    /// empty one, else the one farthest from `now` (the first of them). Written out for the
    /// four words: no loop, no index check.
    @inline(__always)
    func examine(_ bucket: UnsafeMutablePointer<Atomic<UInt64>>, tag: UInt64, now: UInt64) -> (index: Int, seen: UInt64)? {
        let w0 = bucket[0].load(ordering: .relaxed), w1 = bucket[1].load(ordering: .relaxed)
        let w2 = bucket[2].load(ordering: .relaxed), w3 = bucket[3].load(ordering: .relaxed)
        let a0 = age(w0, now), a1 = age(w1, now), a2 = age(w2, now), a3 = age(w3, now)
        // an empty word's tag is 0, never a packet's, and its age is .max
        let window = windowMicros
        if (w0 >> Self.timeBits == tag && a0 < window) || (w1 >> Self.timeBits == tag && a1 < window)
            || (w2 >> Self.timeBits == tag && a2 < window) || (w3 >> Self.timeBits == tag && a3 < window) { return nil }
        var victim = 0, seen = w0, best = a0
        if a1 > best { victim = 1; seen = w1; best = a1 }
        if a2 > best { victim = 2; seen = w2; best = a2 }
        if a3 > best { victim = 3; seen = w3 }
        return (victim, seen)
    }

    /// How far a word's time is from `now` (.max: an empty word).
    @inline(__always)
    func age(_ w: UInt64, _ now: UInt64) -> UInt64 {
        w == 0 ? .max : Self.distance(now, w & Self.timeMask)
    }

    /// |a - b| on the coarse clock (modulo 2^28, the shorter way round).
    @inline(__always)
    static func distance(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let d = (a &- b) & timeMask
        return min(d, (timeMask &+ 1) &- d)
    }
}
