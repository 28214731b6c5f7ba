import LBCore
import Synchronization

/// The UDP ingress's own counters: datagrams, rejections by reason, the kernel's socket drops
/// and buffer size, and packets per VNI. Written by the data-path thread only (relaxed load +
/// store, as `Counters`), read by the stats thread.
public final class UDPStats: @unchecked Sendable {
    enum G: Int, CaseIterable {
        case datagrams = 0, bytes, accepted, kernelDrops, rcvbufRequested, rcvbufGranted, vniOther, vniCount, receiveErrors
        /// keepalives of a forwarding lb answered (docs/scale-out.md)
        case keepalives
    }
    static let rejectBase = 16
    static let size = rejectBase + 32

    /// VNIs tracked at most; more are counted in `vni_other`
    public static let vniCapacity = 4096
    static let vniProbe = 16

    let block: UnsafeMutablePointer<Atomic<UInt64>>
    /// VNI + 1 (0: free), packets, bytes
    let vniKeys: UnsafeMutablePointer<Atomic<UInt32>>
    let vniPackets: UnsafeMutablePointer<Atomic<UInt64>>
    let vniBytes: UnsafeMutablePointer<Atomic<UInt64>>
    /// how many VNIs the stats show
    public let top: Int

    public init(top: Int = 10) {
        self.top = top
        block = UnsafeMutableRawPointer.allocate(byteCount: Self.size * 8, alignment: 64)
            .bindMemory(to: Atomic<UInt64>.self, capacity: Self.size)
        for i in 0..<Self.size { (block + i).initialize(to: Atomic(0)) }
        vniKeys = .allocate(capacity: Self.vniCapacity)
        vniPackets = .allocate(capacity: Self.vniCapacity)
        vniBytes = .allocate(capacity: Self.vniCapacity)
        for i in 0..<Self.vniCapacity {
            (vniKeys + i).initialize(to: Atomic(0))
            (vniPackets + i).initialize(to: Atomic(0))
            (vniBytes + i).initialize(to: Atomic(0))
        }
    }

    deinit {
        UnsafeMutableRawPointer(block).deallocate()
        vniKeys.deallocate()
        vniPackets.deallocate()
        vniBytes.deallocate()
    }

    /// The data path's handle: plain pointers into the counters (no reference counting per
    /// packet). Valid while the `UDPStats` lives.
    struct Writer {
        let block: UnsafeMutablePointer<Atomic<UInt64>>
        let vniKeys: UnsafeMutablePointer<Atomic<UInt32>>
        let vniPackets: UnsafeMutablePointer<Atomic<UInt64>>
        let vniBytes: UnsafeMutablePointer<Atomic<UInt64>>

        @inline(__always)
        func add(_ i: Int, _ n: UInt64) {
            let v = block[i].load(ordering: .relaxed)
            block[i].store(v &+ n, ordering: .relaxed)
        }
        @inline(__always) func add(_ c: G, _ n: UInt64 = 1) { add(c.rawValue, n) }
        @inline(__always) func add(reject: DatagramReject) { add(UDPStats.rejectBase &+ Int(reject.rawValue), 1) }
        @inline(__always) func set(_ c: G, _ v: UInt64) { block[c.rawValue].store(v, ordering: .relaxed) }

        /// Counts a packet of `bytes` for `vni`.
        @inline(__always)
        func add(vni: UInt32, bytes: UInt64) {
            let key = vni &+ 1
            var slot = Int(truncatingIfNeeded: (vni &* 0x9E37_79B1) >> 20) & (UDPStats.vniCapacity - 1)
            for _ in 0..<UDPStats.vniProbe {
                let k = vniKeys[slot].load(ordering: .relaxed)
                if k == key {
                    vniPackets[slot].store(vniPackets[slot].load(ordering: .relaxed) &+ 1, ordering: .relaxed)
                    vniBytes[slot].store(vniBytes[slot].load(ordering: .relaxed) &+ bytes, ordering: .relaxed)
                    return
                }
                if k == 0 {
                    vniPackets[slot].store(1, ordering: .relaxed)
                    vniBytes[slot].store(bytes, ordering: .relaxed)
                    vniKeys[slot].store(key, ordering: .releasing)
                    add(.vniCount)
                    return
                }
                slot = (slot &+ 1) & (UDPStats.vniCapacity - 1)
            }
            add(.vniOther)
        }
    }

    /// The writer for the (one) data-path thread.
    var writer: Writer { Writer(block: block, vniKeys: vniKeys, vniPackets: vniPackets, vniBytes: vniBytes) }

    public func get(_ name: String) -> UInt64? {
        switch name {
        case "datagrams": block[G.datagrams.rawValue].load(ordering: .relaxed)
        case "kernel_drops": block[G.kernelDrops.rawValue].load(ordering: .relaxed)
        default:
            DatagramReject.allCases.first { $0.name == name }.map { block[Self.rejectBase + Int($0.rawValue)].load(ordering: .relaxed) }
        }
    }

    /// The VNIs seen, most packets first: (vni, packets, bytes).
    public func vnis() -> [(vni: UInt32, packets: UInt64, bytes: UInt64)] {
        var out: [(vni: UInt32, packets: UInt64, bytes: UInt64)] = []
        for i in 0..<Self.vniCapacity {
            let k = vniKeys[i].load(ordering: .acquiring)
            if k != 0 { out.append((k &- 1, vniPackets[i].load(ordering: .relaxed), vniBytes[i].load(ordering: .relaxed))) }
        }
        return out.sorted { $0.packets != $1.packets ? $0.packets > $1.packets : $0.vni < $1.vni }
    }

    /// The `udp` part of lb's status.
    func status() -> UDPStatus {
        func g(_ c: G) -> UInt64 { block[c.rawValue].load(ordering: .relaxed) }
        var u = UDPStatus()
        u.datagramsReceived = g(.datagrams)
        u.bytesReceived = g(.bytes)
        u.datagramsAccepted = g(.accepted)
        var reasons: [(String, UInt64)] = []
        for r in DatagramReject.allCases where r != .none {
            let v = block[Self.rejectBase + Int(r.rawValue)].load(ordering: .relaxed)
            u.datagramsRejected &+= v
            reasons.append((r.name, v))
        }
        u.rejected = NamedCounts(reasons)
        u.kernelDrops = g(.kernelDrops)
        u.receiveErrors = g(.receiveErrors)
        u.keepalivesAnswered = g(.keepalives)
        u.rcvbufRequested = g(.rcvbufRequested)
        u.rcvbufGranted = g(.rcvbufGranted)
        u.vniCount = g(.vniCount)
        u.vniOther = g(.vniOther)
        u.vniTop = vnis().prefix(top).map { VNICount(vni: $0.vni, packets: $0.packets, bytes: $0.bytes) }
        return u
    }
}
