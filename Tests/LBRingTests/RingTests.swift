import CLBRing
import Glibc
import LBRing
import LBSys
import Testing

/// A ring made in-process: lb's side (RingMemory) and a consumer's mapping of the same memfds.
final class Pair {
    let memory: RingMemory
    let consumerSide: AttachedRing

    init(slots: Int = 64, dataBytes: Int = 1 << 16, maxCaplen: Int = 2048) throws {
        let g = RingGeometry(slots: slots, dataBytes: dataBytes, maxCaplen: maxCaplen, lanes: 1)
        let m = try RingMemory(name: RingName(group: "t", index: 0), ringCount: 1, geometry: g, instanceID: 7)
        let c = try AttachedRing(dataFD: m.dataDescriptor, dataSize: g.dataRegionSize,
                                 controlFD: m.controlDescriptor, controlSize: g.controlRegionSize)
        memory = m
        consumerSide = c
    }
}

/// Writes one packet of `length` bytes whose content is derived from `seq`.
func put(_ p: inout LaneProducer, seq: UInt64, length: Int) -> Bool {
    guard let (desc, off) = p.reserve(bytes: length) else { return false }
    let b = p.bytes(at: off)
    for i in 0..<length { b.storeBytes(of: UInt8(truncatingIfNeeded: seq &+ UInt64(i)), toByteOffset: i, as: UInt8.self) }
    desc.pointee = lb_desc(ts_ns: seq, data_off: off, caplen: UInt32(length), wirelen: UInt32(length), flow_hash: seq,
                           flags: 0, l3_off: 0xFFFF, encap: 0, depth: 0, vni: 0, vlan: 0, tunnel_len: 0, input: 0,
                           reserved: (0, 0, 0))
    p.commit()
    return true
}

@Suite struct RingTests {
    @Test func geometryRejectsBadSizes() {
        #expect(RingGeometry(slots: 100, dataBytes: 1 << 20, maxCaplen: 9216, lanes: 1).problem != nil)
        #expect(RingGeometry(slots: 1024, dataBytes: 1 << 14, maxCaplen: 9216, lanes: 1).problem != nil)
        #expect(RingGeometry(slots: 1024, dataBytes: 3 << 20, maxCaplen: 9216, lanes: 1).problem != nil)
        #expect(RingGeometry.default.problem == nil)
    }

    @Test func packetsArriveIntactAcrossManyWraps() throws {
        let pair = try Pair()
        var p = pair.memory.producer(lane: 0)
        var c = pair.consumerSide.lane(0)
        var rng = SystemRandomNumberGenerator()
        var written: UInt64 = 0, read: UInt64 = 0
        var lengths: [Int] = []
        for _ in 0..<20_000 {
            // Write until full, then read a random number of packets.
            while true {
                let len = Int.random(in: 1...2048, using: &rng)
                if !put(&p, seq: written, length: len) { break }
                lengths.append(len)
                written += 1
                if Bool.random(using: &rng) { break }
            }
            p.publish()
            let n = Int.random(in: 0...8, using: &rng)
            for _ in 0..<n {
                guard let pkt = c.next() else { break }
                #expect(pkt.descriptor.ts_ns == read)
                #expect(pkt.bytes.count == lengths[Int(read)])
                for i in stride(from: 0, to: pkt.bytes.count, by: 97) {
                    #expect(pkt.bytes[i] == UInt8(truncatingIfNeeded: read &+ UInt64(i)))
                }
                read += 1
            }
            c.release()
        }
        #expect(written > 20_000)
        #expect(p.badTails == 0)
    }

    @Test func fullRingRefusesAndRecovers() throws {
        let pair = try Pair(slots: 64, dataBytes: 1 << 16, maxCaplen: 2048)
        var p = pair.memory.producer(lane: 0)
        var c = pair.consumerSide.lane(0)
        var n = 0
        while put(&p, seq: UInt64(n), length: 60) { n += 1 }
        #expect(n == 64)                           // descriptor-bound: 64 slots
        p.publish()
        _ = c.next()
        #expect(!put(&p, seq: 99, length: 60))    // not released yet
        c.release()
        #expect(put(&p, seq: 99, length: 60))
    }

    /// A consumer that writes garbage into its tail (past the head, backwards, random) can only
    /// make its own ring look full: lb never crashes, never overwrites unread data, counts it.
    @Test func garbageTailIsIgnoredAndCounted() throws {
        let pair = try Pair()
        var p = pair.memory.producer(lane: 0)
        for i in 0..<10 { #expect(put(&p, seq: UInt64(i), length: 100)) }
        p.publish()
        let control = try controlPointer(pair)
        for garbage: UInt64 in [1 << 40, UInt64.max, 11, 5, 3] {
            control.storeBytes(of: garbage, as: UInt64.self)
            p.refreshTail()
        }
        #expect(p.badTails >= 3)                  // past the head: 1<<40, max, 11
        // 5 and 3 are in range (lb cannot tell them from a real consumer): it simply has
        // less room; nothing breaks.
        var written = 0
        while put(&p, seq: 100, length: 100) { written += 1 }
        #expect(written < 64)
    }

    /// The consumer's mapping of DATA is read-only and the regions cannot be resized, so no
    /// consumer can corrupt lb's data or make lb fault on a truncated mapping.
    @Test func sealsProtectLB() throws {
        let pair = try Pair()
        let g = pair.memory.geometry
        // A writable shared mapping of DATA is refused.
        let w = mmap(nil, g.dataRegionSize, PROT_READ | PROT_WRITE, MAP_SHARED, pair.memory.dataDescriptor, 0)
        #expect(w == MAP_FAILED)
        // write(2) into DATA is refused.
        var byte: UInt8 = 1
        #expect(pwrite(pair.memory.dataDescriptor, &byte, 1, 0) == -1)
        // Neither region can be shrunk or grown.
        #expect(ftruncate(pair.memory.dataDescriptor, 4096) == -1)
        #expect(ftruncate(pair.memory.controlDescriptor, 0) == -1)
        #expect(ftruncate(pair.memory.controlDescriptor, off_t(g.controlRegionSize * 2)) == -1)
    }

    @Test func consumerWaitsAndIsWoken() throws {
        let pair = try Pair()
        var p = pair.memory.producer(lane: 0)
        var c = pair.consumerSide.lane(0)
        let start = Sys.monoNanos()
        c.wait(timeoutNanos: 50_000_000)         // nothing published: times out
        #expect(Sys.monoNanos() - start >= 40_000_000)
        #expect(put(&p, seq: 1, length: 10))
        p.publish()
        c.wait(timeoutNanos: 5_000_000_000)       // returns at once: data is there
        #expect(c.next() != nil)
    }

    /// A consumer that set LB_WAIT_DOORBELL is woken through the ring's eventfd: lb writes it
    /// when it publishes (not while the flag is clear) and when it marks the end of the stream.
    @Test func doorbellRingsForAConsumerThatAsked() throws {
        let pair = try Pair()
        var p = pair.memory.producer(lane: 0)
        let bell = pair.memory.doorbellDescriptor
        func count() -> UInt64 {
            var v: UInt64 = 0
            return read(bell, &v, 8) == 8 ? v : 0      // non-blocking: 0 when nothing was rung
        }
        let waiting = try controlPointer(pair) + MemoryLayout<lb_lane_control>.offset(of: \.consumer_waiting)!
        #expect(put(&p, seq: 1, length: 10))
        p.publish()
        #expect(count() == 0, "nobody asked: no ring")
        waiting.storeBytes(of: LB_WAIT_DOORBELL, as: UInt32.self)
        #expect(put(&p, seq: 2, length: 10))
        p.publish()
        #expect(put(&p, seq: 3, length: 10))
        p.publish()
        #expect(count() == 2, "one ring per publish while the flag is set")
        waiting.storeBytes(of: 0, as: UInt32.self)
        pair.memory.setState(LB_STATE_EOS)
        #expect(count() == 1, "the end of the stream rings")
    }

    /// Drops are counted where consumers can read them: the lane header's `dropped`.
    @Test func dropsArePublishedInTheLaneHeader() throws {
        let pair = try Pair()
        let p = pair.memory.producer(lane: 0)
        for _ in 0..<5 { p.countDrop() }
        #expect(pair.memory.publishedDrops == 5)
        let lane = pair.consumerSide.info.lane_offset
        let fd = pair.memory.dataDescriptor
        var v: UInt64 = 0
        #expect(pread(fd, &v, 8, off_t(lane) + off_t(MemoryLayout<lb_lane_header>.offset(of: \.dropped)!)) == 8)
        #expect(v == 5)
        pair.memory.setIngressDrops(42)
        #expect(pread(fd, &v, 8, off_t(MemoryLayout<lb_ring_info>.offset(of: \.ingress_drops)!)) == 8)
        #expect(v == 42)
    }

    func controlPointer(_ pair: Pair) throws -> UnsafeMutableRawPointer {
        let g = pair.memory.geometry
        let m = mmap(nil, g.controlRegionSize, PROT_READ | PROT_WRITE, MAP_SHARED, pair.memory.controlDescriptor, 0)
        guard let m, m != MAP_FAILED else { throw SysError("mmap") }
        return m + Int(LB_CONTROL_LANES)
    }
}

@Suite struct AttachProtocolTests {
    @Test func roundTrip() {
        let r = AttachProtocol.Request(group: "zeek", ring: 3, mode: .consumer)
        let bytes = AttachProtocol.encode(r)
        #expect(bytes.count == AttachProtocol.requestSize)
        #expect(bytes.withUnsafeBytes { AttachProtocol.decodeRequest($0) } == r)
        let bell = AttachProtocol.Request(group: "zeek", ring: 3, mode: .consumer, doorbell: true)
        #expect(AttachProtocol.encode(bell).withUnsafeBytes { AttachProtocol.decodeRequest($0) } == bell)
        var unknown = AttachProtocol.encode(bell)
        unknown[12] |= 0x80                       // a flag this lb does not know
        #expect(unknown.withUnsafeBytes { AttachProtocol.decodeRequest($0) } == nil)
        let reply = AttachProtocol.Reply(error: 16, message: "zeek:3 already has a consumer", fdCount: 0)
        #expect(AttachProtocol.encode(reply).withUnsafeBytes { AttachProtocol.decodeReply($0) } == reply)
    }

    @Test func rejectsGarbage() {
        var rng = SystemRandomNumberGenerator()
        for len in [0, 1, 47, 48, 49, 256] {
            for _ in 0..<200 {
                let junk = (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }
                #expect(junk.withUnsafeBytes { AttachProtocol.decodeRequest($0) } == nil)
            }
        }
    }

    @Test func ringNames() throws {
        #expect(try RingName(parsing: "zeek:3") == RingName(group: "zeek", index: 3))
        #expect(throws: RingNameError.self) { try RingName(parsing: "zeek") }
        #expect(throws: RingNameError.self) { try RingName(parsing: "ze/ek:1") }
        #expect(throws: RingNameError.self) { try RingName(parsing: "zeek:-1") }
        #expect(throws: RingNameError.self) { try RingName(parsing: ":1") }
    }
}
