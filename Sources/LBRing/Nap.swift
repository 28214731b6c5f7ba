/// When a reader has emptied its ring while traffic flows, it sleeps a little before it looks
/// again, instead of asking to be woken at the next packet. A wake-up (futex or poll, the
/// context switch, the empty look that follows) costs several microseconds, more than a packet;
/// at 50 kpps a reader woken per packet spends most of its CPU on wake-ups. Sleeping lets
/// packets gather so each wake-up serves many of them (TPACKET_V3's block timeout does the same
/// for AF_PACKET readers: Suricata and Zeek use 10 ms).
///
/// The nap is bounded so the ring cannot fill meanwhile: at most a quarter of its packets and
/// bytes at the rate seen over the last cycle. It starts short after an idle spell (a burst may
/// follow) and doubles per cycle up to `maxNanos`. Only a reader that found its ring empty
/// naps; one that keeps finding work never sleeps. The reader calls `count` for what it read
/// and `next` when it has emptied the ring; after `maxNanos` of naps that found nothing it is
/// told to wait to be woken (`next` returns 0) until it reads packets again.
public struct Nap: Sendable {
    /// the longest nap; 0 turns napping off
    public var maxNanos: UInt64
    /// the first nap after an idle spell
    public var firstNanos: UInt64
    /// how many packets and bytes the ring holds while the reader sleeps (per lane)
    public var roomPackets: UInt64
    public var roomBytes: UInt64
    var current: UInt64 = 0
    /// the longest nap the last busy cycle's rate allows
    var cap: UInt64 = 0
    /// time napped with nothing found since the last busy cycle
    var idle: UInt64 = 0
    var cycleStart: UInt64 = 0
    var packets: UInt64 = 0
    var bytes: UInt64 = 0

    public init(maxNanos: UInt64, firstNanos: UInt64 = 50_000, roomPackets: UInt64, roomBytes: UInt64 = .max) {
        self.maxNanos = maxNanos
        self.firstNanos = min(firstNanos, maxNanos)
        self.roomPackets = roomPackets
        self.roomBytes = roomBytes
    }

    /// What was read since the last nap.
    @inline(__always)
    public mutating func count(packets n: Int, bytes b: Int) {
        packets &+= UInt64(truncatingIfNeeded: n)
        bytes &+= UInt64(truncatingIfNeeded: b)
    }

    /// Whether the reader is between naps of a busy period (it should look at its ring without
    /// waiting to be woken, then call `next`).
    public var napping: Bool { current != 0 }

    /// The reader found its ring empty at `now`: how long to sleep (0: do not nap; wait to be
    /// woken instead). Starts the next cycle. A nap that found nothing is followed by a longer
    /// one, until a whole `maxNanos` passed with nothing: then the period is over.
    public mutating func next(now: UInt64) -> UInt64 {
        guard maxNanos > 0 else { return 0 }
        if packets == 0 {
            guard current != 0 else { return 0 }
            idle &+= now &- cycleStart
            if idle >= maxNanos {
                reset()
                return 0
            }
            current = min(current &* 2, cap)
            cycleStart = now
            return current
        }
        var nap = current == 0 ? min(firstNanos, maxNanos) : min(current &* 2, maxNanos)
        cap = maxNanos
        if cycleStart != 0 {
            // packets and bytes per second over the cycle that just ended
            let cycle = max(now &- cycleStart, 1)
            let pps = packets &* 1_000_000_000 / cycle
            let bps = bytes / cycle &* 1_000_000_000 &+ (bytes % cycle) &* 1_000_000_000 / cycle
            if pps > 0 { cap = min(cap, roomPackets &* 1_000_000_000 / pps) }
            if bps > 0, roomBytes != .max { cap = min(cap, roomBytes / bps &* 1_000_000_000 &+ (roomBytes % bps) &* 1_000_000_000 / bps) }
            cap = max(cap, 1_000)
        }
        nap = min(nap, cap)
        current = nap
        cycleStart = now
        idle = 0
        packets = 0
        bytes = 0
        return nap
    }

    /// An idle spell: the next busy period starts with a short nap again.
    public mutating func reset() {
        current = 0
        idle = 0
        cycleStart = 0
        packets = 0
        bytes = 0
    }
}
