import CLBRing
import LBRing
import LBSys

/// Batches: read packets, work on them in place, then hand them back to lb.
///
///     var c = try RingConsumer.attach(RingName(parsing: "zeek:3"))
///     loop: while true {
///         switch c.nextBatch(max: 256, timeoutNanos: 100_000_000, { i, lane, p in analyze(p) }) {
///         case .packets(let n): processed += UInt64(n)
///         case .timeout: continue
///         case .endOfStream, .producerGone: break loop
///         }
///         c.report(processed: processed, lossGaps: gaps, lossAcks: acks)   // before release: see below
///         c.release()
///     }
///
/// The packets of a batch (`RingPacket.bytes`, `.tunnel`) point into the ring and stay valid
/// until `release` (or the next `nextBatch`, which releases the previous batch first). lb
/// reuses their space only after that. Report before releasing the last batch: after a capture
/// replay lb prints its final stats as soon as every packet is released, so a report written
/// after that may come too late for them.
extension RingConsumer {
    /// What `nextBatch` found.
    public enum Batch: Equatable, Sendable {
        /// this many packets (1 or more) were handed to the body
        case packets(Int)
        /// nothing arrived within the timeout
        case timeout
        /// lb marked end of stream and every packet has been read
        case endOfStream
        /// lb went away (exited or died) without marking end of stream; every packet it
        /// published has been read
        case producerGone
    }

    /// Reads up to `max` packets without releasing them, calling `body(i, lane, packet)` for
    /// the i-th packet of the batch (i counts from `unreleased` before the call; `lane` is the
    /// lane it came from: packets are in order within a lane). Returns how many.
    /// Each call starts at the lane after the one the previous call started at, so a busy lane
    /// cannot starve the others.
    @discardableResult
    public mutating func read(max: Int, _ body: (_ index: Int, _ lane: Int, _ packet: RingPacket) -> Void) -> Int {
        var n = 0
        var emptyLanes = 0
        while n < max && emptyLanes < lanes.count {
            if let p = lanes[nextLane].next() {
                body(unreleased &+ n, nextLane, p)
                n &+= 1
                nap.count(packets: 1, bytes: p.bytes.count)
                emptyLanes = 0
            } else {
                emptyLanes &+= 1
                nextLane = nextLane &+ 1 == lanes.count ? 0 : nextLane &+ 1
            }
        }
        // The next batch starts at the next lane, so a lane that never empties cannot starve
        // the others.
        if n > 0 { nextLane = nextLane &+ 1 == lanes.count ? 0 : nextLane &+ 1 }
        unreleased &+= n
        packets &+= UInt64(n)
        return n
    }

    /// Hands every packet read so far back to lb (which may then reuse their space), and wakes
    /// lb if it waits for room. The packets' bytes must not be used afterwards.
    public mutating func release() {
        guard unreleased > 0 else { return }
        for k in lanes.indices { lanes[k].release() }
        unreleased = 0
    }

    /// Releases the previous batch, then reads up to `max` packets, waiting up to
    /// `timeoutNanos` for the first one (0: do not wait; negative: wait until packets arrive,
    /// the stream ends or lb goes away).
    public mutating func nextBatch(max: Int, timeoutNanos: Int64,
                                    _ body: (_ index: Int, _ lane: Int, _ packet: RingPacket) -> Void) -> Batch {
        release()
        guard max > 0 else { return .packets(0) }
        let start = timeoutNanos > 0 ? Sys.monoNanos() : 0
        while true {
            let n = read(max: max, body)
            if n > 0 { return .packets(n) }
            switch settled() {
            case .packets?: continue
            case .endOfStream?: return .endOfStream
            case .producerGone?: return .producerGone
            case .timeout?, nil: break
            }
            if timeoutNanos == 0 { refreshReport(); return .timeout }
            // Sleep in slices so that end of stream, a vanished lb and other lanes are noticed.
            var slice: Int64 = 100_000_000
            if timeoutNanos > 0 {
                let spent = Int64(Sys.monoNanos() &- start)
                if spent >= timeoutNanos { refreshReport(); return .timeout }
                slice = min(slice, timeoutNanos - spent)
            }
            _ = wait(timeoutNanos: slice)
        }
    }

    /// Lanes in this ring (one per lb data-path thread).
    public var laneCount: Int { lanes.count }

    /// Descriptors that pointed outside the ring's byte area (delivered with no bytes). Only a
    /// broken or hostile producer causes them; a worker may count them as loss.
    public var badDescriptors: UInt64 { lanes.reduce(0) { $0 &+ $1.badDescriptors } }

    /// The ring's geometry and identity as lb described it.
    public var info: lb_ring_info { ring.info }

    /// Detaches. Packets read but not released are left in the ring for the next consumer of
    /// this ring (release them first if they were processed).
    public consuming func close() {}
}
