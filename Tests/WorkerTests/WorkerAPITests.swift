import CLBRing
import Foundation
import Glibc
import LBCore
import LBGen
import LBRing
import LBWorker
import Testing

/// The Swift worker API against a real lb: batches and their metadata, release, reports that
/// reach lb's stats, timeout vs end of stream vs lb gone.
@Suite struct WorkerAPITests {
    static func attach(_ name: String, runDir: String, seconds: Double = 10) throws -> RingConsumer {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            do {
                return try RingConsumer.attach(try RingName(parsing: name), runDir: runDir, waitNanos: UInt64(seconds * 1e9))
            } catch let e as AttachError where e.code == EBUSY && Date() < deadline {
                usleep(20_000)   // lb has not yet seen the previous consumer leave
            }
        }
    }

    /// Reads `count` packets without releasing any (waiting for lb to publish them).
    static func readUnreleased(_ c: inout RingConsumer, count: Int, seconds: Double = 10) throws -> [lb_desc] {
        var got: [lb_desc] = []
        let deadline = Date().addingTimeInterval(seconds)
        while got.count < count {
            if c.read(max: count - got.count, { _, _, p in got.append(p.descriptor) }) == 0 {
                guard Date() < deadline else { throw TestFailure("only \(got.count) of \(count) packets arrived") }
                _ = c.wait(timeoutNanos: 50_000_000)
            }
        }
        return got
    }

    @Test func batchesCarryMetadataReleaseAndReportsReachStats() throws {
        let scratch = try Scratch("api")
        let trace = scratch.path + "/t.pcap"
        let plainSyn = PacketBuilder.build(.ethernet(), .ipv4(src: "10.0.0.1", dst: "10.0.0.2"), .tcp(sport: 1234, dport: 80, flags: .syn))
        let plainSynAck = PacketBuilder.build(.ethernet(), .ipv4(src: "10.0.0.2", dst: "10.0.0.1"),
                                              .tcp(sport: 80, dport: 1234, flags: [.syn, .ack]))
        let inner: [Layer] = [.ethernet(), .ipv4(src: "10.9.0.1", dst: "10.9.0.2"), .udp(sport: 53000, dport: 53), .payload([1, 2, 3, 4])]
        let vxlan = PacketBuilder.build([.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .udp(sport: 40001, dport: 4789), .vxlan(vni: 77)] + inner)
        let innerLength = PacketBuilder.build(inner).count
        let big = PacketBuilder.build(.ethernet(), .ipv4(src: "10.0.0.3", dst: "10.0.0.4"), .udp(sport: 9, dport: 9), .filler(3000))
        var packets = [plainSyn, plainSynAck, vxlan, big]
        for k in 0..<40 {
            packets.append(PacketBuilder.build(.ethernet(), .ipv4(src: "10.0.1.1", dst: "10.0.1.2"), .udp(sport: UInt16(2000 + k), dport: 7), .filler(60)))
        }
        try Traffic.write(packets, to: trace)
        let runDir = scratch.path + "/run"
        // paced (about 4 s in all): lb must still be replaying when the second consumer comes,
        // or it ends the stream with nobody attached and exits (seen on a loaded CI machine)
        let lb = try Proc(Tool.lb, ["-i", "pcap:" + trace, "-p", "api:1", "--run-dir", runDir, "-w", "30", "--slot-size", "1024",
                                     "--replay-rate", "10"], in: scratch.path, label: "lb")

        // A first consumer reads three packets and leaves without releasing them.
        var first = try Self.attach("api:0", runDir: runDir)
        let d = try Self.readUnreleased(&first, count: 3)
        #expect(first.unreleased == 3)
        #expect(d[0].ts_ns == Traffic.start && d[1].ts_ns == Traffic.start + 1_000_000)
        #expect(d[0].caplen == UInt32(plainSyn.count) && d[0].wirelen == UInt32(plainSyn.count))
        #expect(d[0].l3_off == 14 && d[0].flags & LB_F_DECAPSULATED == 0)
        #expect(d[0].flow_hash == d[1].flow_hash, "both directions hash alike")
        #expect(d[2].flags & LB_F_DECAPSULATED != 0 && d[2].flags & LB_F_TUNNEL_INFO != 0)
        #expect(Int32(d[2].encap) == LB_ENCAP_VXLAN && d[2].depth == 1 && d[2].vni == 77)
        #expect(Int(d[2].caplen) == innerLength, "the inner frame is delivered")
        // one consumer per ring: a second one is refused with EBUSY, naming the first
        let apiName = try RingName(parsing: "api:0")
        do throws(AttachError) {
            _ = try RingConsumer.attach(apiName, runDir: runDir, waitNanos: 0)
            Issue.record("a second consumer attached to api:0")
        } catch {
            #expect(error.code == EBUSY && error.description.contains("\(getpid())"), "\(error)")
        }
        first.close()

        // The next consumer starts where the first left: the unreleased packets come again.
        var second = try Self.attach("api:0", runDir: runDir)
        var seen = 0, truncated = 0, tunnels = 0
        var firstTS: UInt64 = 0
        var outcome = RingConsumer.Batch.timeout
        while true {
            outcome = second.nextBatch(max: 8, timeoutNanos: 5_000_000_000) { i, lane, p in
                if seen == 0 { firstTS = p.descriptor.ts_ns }
                #expect(lane == 0)
                if p.descriptor.flags & LB_F_TRUNCATED != 0 {
                    truncated += 1
                    #expect(p.bytes.count == 1024 && Int(p.descriptor.wirelen) == big.count)
                }
                if let t = p.tunnel {
                    tunnels += 1
                    #expect(t.pointee.dport == 4789 && t.pointee.vni == 77 && t.pointee.family == 4)
                }
                seen += 1
            }
            guard case .packets = outcome else { break }
            // report before release: lb prints its final stats once everything is released
            second.report(processed: UInt64(seen), lossGaps: 3, lossAcks: 10)
            second.release()
        }
        #expect(outcome == .endOfStream)
        #expect(second.nextBatch(max: 8, timeoutNanos: 0) { _, _, _ in } == .endOfStream, "end of stream stays")
        #expect(firstTS == Traffic.start)
        #expect(seen == packets.count && truncated == 1 && tunnels == 1)
        try lb.finish()
        second.close()

        let stats = try LBStats(lb.stdout)
        #expect(stats.int("api:0", "packets_forwarded") == packets.count)
        #expect(stats.int("api:0", "packets_processed_by_worker") == packets.count)
        #expect(stats.int("api:0", "worker_loss_gaps") == 3 && stats.int("api:0", "worker_loss_acks") == 10)
        #expect(stats.double("api:0", "worker_loss_percent") == 30)
        #expect(stats.int("api:0", "worker_report_pid") == Int(getpid()))
        #expect(stats.rings["api:0"]?["worker_report_suspect"] as? Bool == false)
        let age = stats.double("api:0", "worker_report_age_s") ?? -1
        #expect(age >= 0 && age < 30, "report age \(age)")
    }

    /// A timeout is not an end of stream; a worker that writes absurd numbers into its report
    /// does not hurt lb, which shows them raw and flags them.
    @Test func timeoutThenEndOfStreamAndAbsurdReport() throws {
        let scratch = try Scratch("eos")
        let trace = scratch.path + "/t.pcap"
        let (packets, _, _) = Traffic.conversations(20)
        try Traffic.write(packets, to: trace)
        let runDir = scratch.path + "/run"
        // Two rings, one consumer: lb waits 2 s for the other before it reads anything.
        let lb = try Proc(Tool.lb, ["-i", "pcap:" + trace, "-p", "to:2", "--run-dir", runDir, "-w", "2"], in: scratch.path, label: "lb")
        var c = try Self.attach("to:0", runDir: runDir)
        c.report(processed: UInt64.max, lossGaps: UInt64.max, lossAcks: 0)
        #expect(c.nextBatch(max: 16, timeoutNanos: 0) { _, _, _ in } == .timeout)
        #expect(c.nextBatch(max: 16, timeoutNanos: 300_000_000) { _, _, _ in } == .timeout)
        var seen = 0
        var outcome = RingConsumer.Batch.timeout
        repeat {
            outcome = c.nextBatch(max: 16, timeoutNanos: -1) { _, _, _ in seen += 1 }
        } while outcome != .endOfStream && outcome != .producerGone
        #expect(outcome == .endOfStream)
        try lb.finish()
        let stats = try LBStats(lb.stdout)
        #expect(stats.int("to:0", "packets_forwarded") == seen && seen > 0)
        let line = stats.raw["to:0"] ?? ""
        #expect(line.contains("\"packets_processed_by_worker\":18446744073709551615"), "raw value shown: \(line)")
        #expect(line.contains("\"worker_loss_gaps\":18446744073709551615"))
        #expect(stats.isNull("to:0", "worker_loss_percent"), "no acks: no percentage, never 0 %")
        #expect(stats.rings["to:0"]?["worker_report_suspect"] as? Bool == true)
        // the ring without a consumer: never reported
        #expect(stats.isNull("to:1", "worker_report_age_s") && stats.isNull("to:1", "worker_loss_percent"))
        #expect(stats.int("to:1", "packets_dropped") == packets.count - seen)
    }

    /// lb killed mid-stream: the worker hears "lb gone", not "end of stream" (a 30 s bound
    /// only keeps a broken build from hanging the run: the outcome is checked, not the time).
    @Test func producerGoneIsNotEndOfStream() throws {
        let scratch = try Scratch("gone")
        let trace = scratch.path + "/t.pcap"
        try Traffic.write(Traffic.conversations(4).packets, to: trace)
        let runDir = scratch.path + "/run"
        let lb = try Proc(Tool.lb, ["-i", "pcap:" + trace, "-p", "pg:2", "--run-dir", runDir, "-w", "60"], in: scratch.path, label: "lb")
        var c = try Self.attach("pg:0", runDir: runDir)
        #expect(c.nextBatch(max: 16, timeoutNanos: 100_000_000) { _, _, _ in } == .timeout)
        lb.child.signal(SIGKILL)
        _ = try? lb.child.wait(seconds: 10)
        let outcome = c.nextBatch(max: 16, timeoutNanos: 30_000_000_000) { _, _, _ in }
        #expect(outcome == .producerGone)
    }
}
