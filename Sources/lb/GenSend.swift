import Glibc
import LBBroker
import LBCore
import LBSys

/// Frames held in memory for sending: one buffer, with the offset and length of each frame.
/// Built once before sending; the send loop allocates nothing.
struct FramePool: ~Copyable {
    let bytes: UnsafeMutablePointer<UInt8>
    let offsets: UnsafeMutablePointer<UInt64>
    let lengths: UnsafeMutablePointer<UInt32>
    let count: Int
    let totalBytes: Int

    /// Frames that were not taken, by reason (too long for the interface, not Ethernet, ...).
    var skipped: [String: Int] = [:]

    init(frames: [[UInt8]]) {
        count = frames.count
        totalBytes = frames.reduce(0) { $0 + $1.count }
        bytes = .allocate(capacity: max(totalBytes, 1))
        offsets = .allocate(capacity: max(count, 1))
        lengths = .allocate(capacity: max(count, 1))
        var at = 0
        for (i, f) in frames.enumerated() {
            f.withUnsafeBufferPointer { src in (bytes + at).update(from: src.baseAddress!, count: src.count) }
            offsets[i] = UInt64(at)
            lengths[i] = UInt32(f.count)
            at += f.count
        }
    }

    deinit {
        bytes.deallocate()
        offsets.deallocate()
        lengths.deallocate()
    }

    /// The longest frame the kernel takes on an interface of this MTU: the MTU plus the
    /// Ethernet header, plus 4 for a VLAN-tagged frame (as af_packet's packet_snd allows).
    static func fits(_ frame: [UInt8], mtu: Int) -> Bool {
        let tagged = frame.count >= 14 && ((frame[12] == 0x81 && frame[13] == 0x00) || (frame[12] == 0x88 && frame[13] == 0xA8))
        return frame.count <= mtu + 14 + (tagged ? 4 : 0)
    }

    /// Keeps the frames an Ethernet interface of this MTU will take, counting the others.
    static func filter(_ frames: [[UInt8]], mtu: Int) -> (kept: [[UInt8]], skipped: [String: Int]) {
        var kept: [[UInt8]] = []
        kept.reserveCapacity(frames.count)
        var skipped: [String: Int] = [:]
        for f in frames {
            if f.count < 14 { skipped["shorter than an Ethernet header", default: 0] += 1 }
            else if !fits(f, mtu: mtu) { skipped["longer than MTU \(mtu) + Ethernet header", default: 0] += 1 }
            else { kept.append(f) }
        }
        return (kept, skipped)
    }

    /// Reads the Ethernet frames of a capture file (classic pcap or pcapng).
    static func readCapture(_ path: String) throws -> (frames: [[UInt8]], skipped: [String: Int]) {
        var file: CaptureFile
        do { file = try CaptureFile(path: path) } catch { throw GenSendError(error.description) }
        var frames: [[UInt8]] = []
        var skipped: [String: Int] = [:]
        while let p = file.next(canSlide: true) {    // each frame is copied before the next
            guard p.linkType == 1 else { skipped["link type \(p.linkType), not Ethernet", default: 0] += 1; continue }
            if p.data.count < p.wireLength { skipped["cut short in the capture (snaplen)", default: 0] += 1; continue }
            frames.append(Array(p.data))
        }
        if let why = file.stoppedEarly { skipped["capture ends early: \(why)", default: 0] += 1 }
        return (frames, skipped)
    }
}

struct GenSendError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// What a send run did.
struct SendReport {
    var packets: UInt64 = 0
    var bytes: UInt64 = 0
    var nanos: UInt64 = 0
    /// Batches the kernel refused for lack of room (ENOBUFS/EAGAIN) and that were tried again.
    var busy: UInt64 = 0
    /// Times the sender fell more than a burst behind its rate and forgot the debt (the rate
    /// could not be kept).
    var lagged: UInt64 = 0

    var seconds: Double { Double(nanos) / 1e9 }
    var pps: Double { nanos == 0 ? 0 : Double(packets) / seconds }
    var mbps: Double { nanos == 0 ? 0 : Double(bytes) * 8 / seconds / 1e6 }
}

/// The send loop: frames in pool order, cycling, paced by a token bucket on CLOCK_MONOTONIC.
struct SendLoop {
    /// Packets per second; 0 sends as fast as the kernel takes them.
    var rate: UInt64 = 0
    /// Frames to send in all (cycling through the pool); nil: until `durationNanos` or a signal.
    var count: UInt64? = nil
    var durationNanos: UInt64? = nil
    /// The most frames per sendmmsg call (and so the largest burst when pacing).
    var batch = 64

    /// With a rate, each tick sends what is due, at most one batch per sendmmsg call. The
    /// frames per tick are chosen so that ticks are about 100 us apart (at least 1 frame):
    /// a low rate gets small bursts. A sender that wakes up late catches up on at most 1 ms
    /// of packets; beyond that it forgets the debt and counts `lagged`.
    func run(_ pool: borrowing FramePool, on sender: borrowing PacketSender) throws(SysError) -> SendReport {
        var report = SendReport()
        guard pool.count > 0 else { return report }
        let perTick: UInt64 = rate == 0 ? UInt64(batch) : max(1, min(UInt64(batch), rate / 10_000))
        // How far behind the schedule the sender may fall (a late wake-up) and still catch up:
        // 1 ms of packets, at least two ticks, at most four batches back to back.
        let burst = max(perTick * 2, min(rate / 1_000, UInt64(batch) * 4))
        var start = Sys.monoNanos()
        let began = start
        var next = 0                                // index of the next frame in the pool
        var sentSinceStart: UInt64 = 0              // packets sent since `start` (for pacing)
        let limit = count ?? UInt64.max
        let end = durationNanos.map { began &+ $0 } ?? UInt64.max
        var now = began

        while report.packets < limit && !Sys.stopRequested {
            var want = UInt64(batch)
            if rate > 0 {
                now = Sys.monoNanos()
                if now >= end { break }
                let elapsed = now - start
                let due = elapsed / 1_000_000_000 * rate + (elapsed % 1_000_000_000) * rate / 1_000_000_000
                if due > sentSinceStart + burst {
                    // Behind by more than a burst: the rate cannot be kept. Forget the debt
                    // rather than send a long burst, and count it.
                    report.lagged += 1
                    start = now - nanos(for: sentSinceStart + perTick)
                    want = perTick
                } else if due < sentSinceStart + perTick {
                    // Sleep until a whole tick's worth is due.
                    let wake = start + nanos(for: sentSinceStart + perTick)
                    Sys.sleep(untilMonoNanos: min(wake, end))
                    continue
                } else {
                    want = min(due - sentSinceStart, UInt64(batch))
                }
            } else if durationNanos != nil && Sys.monoNanos() >= end {
                break
            }
            want = min(want, limit - report.packets, UInt64(pool.count - next))
            let n = try sender.send(base: pool.bytes, offsets: pool.offsets + next, lengths: pool.lengths + next, count: Int(want))
            if n == 0 {
                report.busy += 1
                sched_yield()
                continue
            }
            for i in next..<(next + n) { report.bytes &+= UInt64(pool.lengths[i]) }
            report.packets &+= UInt64(n)
            sentSinceStart &+= UInt64(n)
            next += n
            if next == pool.count { next = 0 }
        }
        report.nanos = Sys.monoNanos() - began
        return report
    }

    /// When `packets` are due after the start, in ns, without overflow for any run length.
    @inline(__always)
    private func nanos(for packets: UInt64) -> UInt64 {
        packets / rate * 1_000_000_000 + packets % rate * 1_000_000_000 / rate
    }
}
