import CLBXdp
import Glibc
import LBCore
import LBRing
import LBSys

/// One AF_XDP socket (one RX queue) as a packet source. When it has emptied its RX ring while
/// traffic flows it naps (see `Nap`) before it looks again; when idle it sleeps in poll().
struct XSKQueueSource: PacketSource, ~Copyable {
    let xsk: OpaquePointer
    let lane: UInt32
    let pkts: UnsafeMutablePointer<lbx_pkt>
    let capacity: Int
    let name: String
    var nap: Nap
    /// how long to sleep before the next look (set when a batch came back short)
    var pendingNap: UInt64 = 0
    var finished: Bool { false }
    var isLive: Bool { true }

    init(_ xsk: OpaquePointer, lane: UInt32, name: String, batch: Int, nap: Nap) {
        self.xsk = xsk
        self.lane = lane
        self.name = name
        self.nap = nap
        capacity = batch
        pkts = .allocate(capacity: batch)
    }

    deinit { pkts.deallocate() }

    mutating func receive(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        // The dispatcher published everything after the short batch that set this.
        if pendingNap > 0 {
            Sys.sleep(nanos: pendingNap)
            pendingNap = 0
        }
        let want = min(max, capacity)
        // between naps: look without poll(); otherwise poll() until a packet comes (at most
        // 100 ms, so that a stop request is seen)
        let n = Int(lbx_xsk_receive(xsk, pkts, UInt32(want), nap.napping ? 0 : 100))
        let bytes = fill(frames, n)
        nap.count(packets: n, bytes: bytes)
        // a short batch naps only when the RX ring is empty (not when a multi-buffer frame cut it)
        if n < want && lbx_xsk_rx_waiting(xsk) == 0 { pendingNap = nap.next(now: Sys.monoNanos()) }
        return n
    }

    mutating func drain(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        let n = Int(lbx_xsk_receive(xsk, pkts, UInt32(min(max, capacity)), 0))
        _ = fill(frames, n)
        return n
    }

    /// Frames for the n packets just taken; returns their bytes. AF_XDP gives no timestamp: the
    /// batch's arrival time stands for each frame's.
    func fill(_ frames: UnsafeMutablePointer<Frame>, _ n: Int) -> Int {
        let now = n > 0 ? Sys.wallNanos() : 0
        var bytes = 0
        for i in 0..<n {
            let p = pkts[i]
            bytes &+= Int(p.len)
            frames[i] = Frame(bytes: UnsafeRawBufferPointer(start: p.data, count: Int(p.len)), wireLength: Int(p.wire_len),
                              timestampNanos: now, linkType: 1, input: lane)
        }
        return bytes
    }
}

/// An AF_PACKET TPACKET_V3 socket as a packet source. Sleeps in poll() when idle.
struct TPacketSource: PacketSource, ~Copyable {
    let t: OpaquePointer
    let pkts: UnsafeMutablePointer<lbx_pkt>
    let stamps: UnsafeMutablePointer<UInt64>
    let capacity: Int
    let name: String
    var finished: Bool { false }
    var isLive: Bool { true }

    init(_ t: OpaquePointer, name: String, batch: Int) {
        self.t = t
        self.name = name
        capacity = batch
        pkts = .allocate(capacity: batch)
        stamps = .allocate(capacity: batch)
    }

    deinit {
        pkts.deallocate()
        stamps.deallocate()
    }

    mutating func receive(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        receive(into: frames, max: max, timeoutMillis: 10)
    }

    mutating func drain(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        receive(into: frames, max: max, timeoutMillis: 0)
    }

    mutating func receive(into frames: UnsafeMutablePointer<Frame>, max: Int, timeoutMillis: Int32) -> Int {
        let n = Int(lbx_tpacket_receive(t, pkts, stamps, UInt32(min(max, capacity)), timeoutMillis))
        for i in 0..<n {
            let p = pkts[i]
            frames[i] = Frame(bytes: UnsafeRawBufferPointer(start: p.data, count: Int(p.len)), wireLength: Int(p.wire_len),
                              timestampNanos: stamps[i], linkType: 1, input: 0)
        }
        return n
    }
}
