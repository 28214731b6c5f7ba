// One side of a connection, with the state Zeek keeps in TCP_Endpoint and in the TCP
// reassembler that matter for conn.log and capture_loss.log. Fixed size, no references.

/// Zeek's TCP_ENDPOINT_* states (same numbers).
public enum EndpointState: UInt8, Sendable {
    case inactive = 0, synSent = 1, synAckSent = 2, partial = 3, established = 4, closed = 5, reset = 6
}

/// Received-but-unacknowledged byte ranges of one direction (Zeek's reassembler block list,
/// kept as at most `maxIntervals` merged ranges; see docs/flowlog.md for the bound).
struct Intervals {
    static let maxIntervals = 4
    var s0: UInt64 = 0, u0: UInt64 = 0
    var s1: UInt64 = 0, u1: UInt64 = 0
    var s2: UInt64 = 0, u2: UInt64 = 0
    var s3: UInt64 = 0, u3: UInt64 = 0
    var count: UInt8 = 0

    @inline(__always) func seq(_ i: Int) -> UInt64 {
        switch i { case 0: s0; case 1: s1; case 2: s2; default: s3 }
    }
    @inline(__always) func upper(_ i: Int) -> UInt64 {
        switch i { case 0: u0; case 1: u1; case 2: u2; default: u3 }
    }
    @inline(__always) mutating func set(_ i: Int, _ s: UInt64, _ u: UInt64) {
        switch i {
        case 0: s0 = s; u0 = u
        case 1: s1 = s; u1 = u
        case 2: s2 = s; u2 = u
        default: s3 = s; u3 = u
        }
    }

    var isEmpty: Bool { count == 0 }
    var dataSize: UInt64 {
        var t: UInt64 = 0
        for i in 0..<Int(count) { t &+= upper(i) &- seq(i) }
        return t
    }

    /// Adds [s, u), merging with touching or overlapping ranges. When all slots are taken,
    /// the two closest ranges are merged (the hole between them is then treated as received).
    mutating func insert(_ s: UInt64, _ u: UInt64) {
        var ns = s, nu = u
        var i = 0
        // remove every range that overlaps or touches [ns, nu), widening it
        while i < Int(count) {
            let a = seq(i), b = upper(i)
            if b >= ns && a <= nu {
                ns = min(ns, a); nu = max(nu, b)
                remove(i)
            } else {
                i += 1
            }
        }
        // insert sorted
        var pos = 0
        while pos < Int(count) && seq(pos) < ns { pos += 1 }
        if Int(count) == Self.maxIntervals {
            // merge the closest neighbours to make room
            var best = 0
            var bestGap = UInt64.max
            for k in 0..<(Int(count) - 1) {
                let g = seq(k + 1) &- upper(k)
                if g < bestGap { bestGap = g; best = k }
            }
            set(best, seq(best), upper(best + 1))
            remove(best + 1)
            pos = 0
            while pos < Int(count) && seq(pos) < ns { pos += 1 }
        }
        var k = Int(count)
        while k > pos { set(k, seq(k - 1), upper(k - 1)); k -= 1 }
        set(pos, ns, nu)
        count += 1
    }

    mutating func remove(_ i: Int) {
        var k = i
        while k + 1 < Int(count) { set(k, seq(k + 1), upper(k + 1)); k += 1 }
        count -= 1
    }

    mutating func removeAll() { count = 0 }
}

struct Endpoint {
    var state = EndpointState.inactive
    var prevState = EndpointState.inactive
    var isOrig: Bool
    var didClose = false
    var windowScale: UInt8 = 0
    var startSeq: UInt32 = 0
    var lastSeq: UInt32 = 0
    var ackSeq: UInt32 = 0
    var seqWraps: UInt32 = 0
    var ackWraps: UInt32 = 0
    var finCount: UInt32 = 0
    var rstCount: UInt32 = 0
    var finSeq: UInt64 = 0
    var histLastSYN: UInt64 = 0
    var histLastFIN: UInt64 = 0
    var histLastRST: UInt64 = 0
    var gapCount: UInt32 = 0, gapThresh: UInt32 = 1
    var chkCount: UInt32 = 0, chkThresh: UInt32 = 1
    var rxmtCount: UInt32 = 0, rxmtThresh: UInt32 = 1
    var win0Count: UInt32 = 0, win0Thresh: UInt32 = 1
    // the reassembler's view (relative sequence numbers, 1 = first byte after the SYN)
    var lastReassem: UInt64 = 1
    var trimSeq: UInt64 = 1
    var blocks = Intervals()
    var skipDeliveries = false
    var didEOF = false
    // conn-size analyzer
    var packets: UInt64 = 0
    var ipBytes: UInt64 = 0
    // UDP/ICMP payload bytes (Zeek's request_len/reply_len; -1: nothing seen)
    var dgramBytes: Int64 = -1

    init(isOrig: Bool) { self.isOrig = isOrig }

    @inline(__always) var startSeq64: UInt64 { UInt64(startSeq) }
    @inline(__always) func full(_ seq: UInt32, _ wraps: UInt32) -> UInt64 { UInt64(wraps) << 32 | UInt64(seq) }
    @inline(__always) func relative(_ seq: UInt32, _ wraps: UInt32) -> UInt64 { full(seq, wraps) &- startSeq64 }

    mutating func updateLastSeq(_ s: UInt32) {
        if s < lastSeq { seqWraps &+= 1 }
        lastSeq = s
    }
    mutating func updateAckSeq(_ s: UInt32) {
        if s < ackSeq { ackWraps &+= 1 }
        ackSeq = s
    }

    mutating func setState(_ s: EndpointState) {
        if s != state { prevState = state; state = s }
    }

    var noDataAcked: Bool {
        let a = full(ackSeq, ackWraps)
        return a == startSeq64 || a == startSeq64 &+ 1
    }

    var isActive: Bool { state != .inactive && !didClose }

    /// Zeek's TCP_Endpoint::Size(): payload bytes from sequence numbers.
    func size(peerState: EndpointState) -> UInt64 {
        if prevState == .synSent && state == .reset && peerState == .inactive && !noDataAcked { return 0 }
        let last = full(lastSeq, seqWraps)
        let ack = full(ackSeq, ackWraps)
        var s = (last > ack ? last : ack) &- startSeq64
        if s != 0 { s &-= 1 }
        if finCount > 0 && s != 0 { s &-= 1 }
        return s
    }
}

@inline(__always) func seqDelta(_ a: UInt32, _ b: UInt32) -> Int32 { Int32(bitPattern: a &- b) }
