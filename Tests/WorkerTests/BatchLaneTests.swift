import CLBRing
import Glibc
import LBRing
import LBSys
@testable import LBWorker
import Testing

/// The batch API on an in-process ring of several lanes (lb itself has one lane per data-path
/// thread; a capture replay uses one): fairness between lanes, order within a lane, what
/// `release` hands back, and how the end of stream and a vanished lb are told apart.
@Suite struct BatchLaneTests {
    /// lb's side (RingMemory) and a RingConsumer on the same memfds; `peer` is lb's end of the
    /// attachment socket (closing it is "lb went away").
    final class Setup {
        let memory: RingMemory
        var producers: [LaneProducer]
        var peer: Int32
        var consumer: RingConsumer?

        init(lanes: Int) throws {
            let g = RingGeometry(slots: 256, dataBytes: 1 << 16, maxCaplen: 2048, lanes: lanes)
            let m = try RingMemory(name: RingName(group: "bl", index: 0), ringCount: 1, geometry: g, instanceID: 9)
            memory = m
            producers = (0..<lanes).map { m.producer(lane: $0) }
            var fds: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else { throw TestFailure("socketpair") }
            peer = fds[1]
            let ring = try AttachedRing(dataFD: memory.dataDescriptor, dataSize: g.dataRegionSize,
                                        controlFD: memory.controlDescriptor, controlSize: g.controlRegionSize)
            consumer = RingConsumer(socket: OwnedFD(fds[0]), ring: ring, name: RingName(group: "bl", index: 0), isTap: false)
        }
        deinit { if peer >= 0 { close(peer) } }

        /// Publishes `count` packets on `lane`; packet j has flow_hash lane << 32 | j.
        func put(lane: Int, count: Int, from first: Int = 0) throws {
            for j in first..<(first + count) {
                guard let (desc, off) = producers[lane].reserve(bytes: 64) else { throw TestFailure("lane \(lane) full") }
                producers[lane].bytes(at: off).storeBytes(of: UInt8(truncatingIfNeeded: j), as: UInt8.self)
                desc.pointee = lb_desc(ts_ns: UInt64(j), data_off: off, caplen: 64, wirelen: 64,
                                       flow_hash: UInt64(lane) << 32 | UInt64(j), flags: 0, l3_off: 0xFFFF, encap: 0,
                                       depth: 0, vni: 0, vlan: 0, tunnel_len: 0, input: 0, reserved: (0, 0, 0))
                producers[lane].commit()
            }
            producers[lane].publish()
        }
    }

    @Test func busyLaneDoesNotStarveOthersAndOrderHoldsWithinLanes() throws {
        let s = try Setup(lanes: 3)
        try s.put(lane: 0, count: 200)
        try s.put(lane: 1, count: 5)
        try s.put(lane: 2, count: 3)
        var seen: [[Int]] = [[], [], []]
        var batches = 0
        var firstBatchWithLane1 = -1, firstBatchWithLane2 = -1
        while true {
            var lanesInBatch: Set<Int> = []
            let r = s.consumer!.nextBatch(max: 16, timeoutNanos: 0) { _, lane, p in
                let l = Int(p.descriptor.flow_hash >> 32)
                #expect(l == lane, "packet of lane \(l) reported as lane \(lane)")
                #expect(p.bytes.count == 64 && Int(p.bytes[0]) == Int(p.descriptor.flow_hash & 0xFF))
                seen[l].append(Int(p.descriptor.flow_hash & 0xFFFF_FFFF))
                lanesInBatch.insert(l)
            }
            guard case .packets = r else { #expect(r == .timeout); break }
            if lanesInBatch.contains(1) && firstBatchWithLane1 < 0 { firstBatchWithLane1 = batches }
            if lanesInBatch.contains(2) && firstBatchWithLane2 < 0 { firstBatchWithLane2 = batches }
            batches += 1
        }
        #expect(seen[0] == Array(0..<200) && seen[1] == Array(0..<5) && seen[2] == Array(0..<3))
        #expect(firstBatchWithLane1 >= 0 && firstBatchWithLane1 <= 2, "lane 1 waited \(firstBatchWithLane1) batches")
        #expect(firstBatchWithLane2 >= 0 && firstBatchWithLane2 <= 2, "lane 2 waited \(firstBatchWithLane2) batches")
    }

    @Test func releaseHandsBackExactlyWhatWasRead() throws {
        let s = try Setup(lanes: 2)
        try s.put(lane: 0, count: 10)
        try s.put(lane: 1, count: 10)
        var n = s.consumer!.read(max: 7) { _, _, _ in }
        #expect(n == 7 && s.consumer!.unreleased == 7)
        #expect(s.memory.tail(lane: 0) == 0 && s.memory.tail(lane: 1) == 0, "nothing released before release()")
        n = s.consumer!.read(max: 100) { _, _, _ in }
        #expect(n == 13 && s.consumer!.unreleased == 20)
        s.consumer!.release()
        #expect(s.consumer!.unreleased == 0)
        #expect(s.memory.tail(lane: 0) == 10 && s.memory.tail(lane: 1) == 10)
        // nextBatch releases the previous batch first
        try s.put(lane: 1, count: 4, from: 10)
        #expect(s.consumer!.nextBatch(max: 3, timeoutNanos: 0) { _, _, _ in } == .packets(3))
        #expect(s.memory.tail(lane: 1) == 10)
        #expect(s.consumer!.nextBatch(max: 3, timeoutNanos: 0) { _, _, _ in } == .packets(1))
        #expect(s.memory.tail(lane: 1) == 13)
        #expect(s.consumer!.nextBatch(max: 3, timeoutNanos: 0) { _, _, _ in } == .timeout)
        #expect(s.memory.tail(lane: 1) == 14)
    }

    @Test func endOfStreamOnlyAfterTheLastPacket() throws {
        let s = try Setup(lanes: 2)
        try s.put(lane: 0, count: 3)
        try s.put(lane: 1, count: 2)
        s.memory.setState(LB_STATE_EOS)
        var total = 0
        var r = RingConsumer.Batch.timeout
        repeat { r = s.consumer!.nextBatch(max: 2, timeoutNanos: -1) { _, _, _ in total += 1 } } while r != .endOfStream
        #expect(total == 5)
    }

    /// lb going away ends the wait (a 30 s bound only keeps a broken build from hanging the
    /// run: the outcome is checked, not the time).
    @Test func lbGoneOnlyAfterTheLastPacketAndWithoutWaitingOut() throws {
        let s = try Setup(lanes: 1)
        try s.put(lane: 0, count: 4)
        close(s.peer)
        s.peer = -1
        #expect(s.consumer!.nextBatch(max: 16, timeoutNanos: -1) { _, _, _ in } == .packets(4))
        #expect(s.consumer!.nextBatch(max: 16, timeoutNanos: 30_000_000_000) { _, _, _ in } == .producerGone)
    }

    @Test func idleWorkerKeepsItsReportFresh() throws {
        let s = try Setup(lanes: 1)
        #expect(s.consumer!.nextBatch(max: 1, timeoutNanos: 0) { _, _, _ in } == .timeout)
        #expect(s.memory.consumerReport().heartbeatNanos == 0, "no report is invented for a worker that never reported")
        s.consumer!.report(processed: 7, lossGaps: 1, lossAcks: 2)
        let first = s.memory.consumerReport()
        usleep(20_000)
        #expect(s.consumer!.nextBatch(max: 1, timeoutNanos: 1_000_000) { _, _, _ in } == .timeout)
        let again = s.memory.consumerReport()
        #expect(again.heartbeatNanos > first.heartbeatNanos)
        #expect(again.packetsProcessed == 7 && again.lossGaps == 1 && again.lossAcks == 2 && again.pid == getpid())
    }
}
