import CLBRing
import Foundation
import Glibc
import LBBroker
import LBCore
import LBRing
import LBSys
import Testing

/// lb with 8 consumers and failover on; one consumer is killed in the middle of a paced replay.
@Suite(.serialized) struct FailoverEndToEndTests {
    /// The flow hash of every packet of a pcap file, as lb computes it (fragments, packets that
    /// did not parse, and frames without IP are left out: their hash depends on context).
    static func hashes(_ file: String) throws -> [UInt64] {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        let decoder = Decoder(DecodeConfig())
        var out: [UInt64] = []
        try data.withUnsafeBytes { buf in
            var r = try CaptureReader(buf)
            while let p = r.next() {
                let d = decoder.decode(p.data, link: LinkType(linktype: p.linkType) ?? .ethernet)
                if d.isFragment || d.error != .none || d.nonIP { continue }
                out.append(decoder.flowHash(d))
            }
        }
        return out
    }

    /// Its flows move to the 7 others (evenly, each bucket to one ring), no other flow moves,
    /// packets keep arriving, and when a new consumer attaches exactly its flows come back.
    @Test func killedConsumersFlowsMoveAndNothingElse() throws {
        let scratch = try Scratch("failover")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 32000, flows: 800)
        let runDir = dir + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:8", "--run-dir", runDir, "-w", "60",
                                   "--replay-rate", "4000", "--failover", "0.3"], in: dir, label: "lb")
        var cats: [Proc] = []
        for k in 0..<8 {
            cats.append(try Proc(Ops.lb, ["cat", "a:\(k)", "-w", dir + "/a\(k).pcap", "--run-dir", runDir], in: dir, label: "cat\(k)"))
        }
        let victim = 5
        #expect(try eventually(30) { (try? Ops.stats(runDir: runDir, in: dir))?["lb"]?.int("packets_received") ?? 0 > 5000 },
                "lb did not start replaying: \(lb.stderr)")
        cats[victim].signal(SIGKILL)
        _ = try? cats[victim].wait(seconds: 5)
        // Moves are visible in the stats: the victim is failed over and holds no bucket.
        var seen: [String: Any] = [:]
        #expect(try eventually(10) {
            seen = (try? Ops.stats(runDir: runDir, in: dir))?["a:\(victim)"] ?? [:]
            return seen["failed_over"] as? Bool == true
        }, "a:\(victim) not failed over: \(seen)")
        #expect(seen.int("buckets") == 0 && seen.int("failovers") == 1)
        // Its flows run on the other rings for a while: 6000 more packets (about 750 of its own).
        let at = (try? Ops.stats(runDir: runDir, in: dir))?["lb"]?.int("packets_received") ?? 0
        #expect(try eventually(15) { (try? Ops.stats(runDir: runDir, in: dir))?["lb"]?.int("packets_received") ?? 0 > at + 6000 })
        // A new consumer for the ring: its buckets come back (exactly its own 512).
        let returned = try Proc(Ops.lb, ["cat", "a:\(victim)", "-w", dir + "/a\(victim)-back.pcap", "--run-dir", runDir], in: dir,
                                label: "cat\(victim)-back")
        #expect(try eventually(10) {
            seen = (try? Ops.stats(runDir: runDir, in: dir))?["a:\(victim)"] ?? [:]
            return seen["failed_over"] as? Bool == false && seen.int("buckets") == 512
        }, "a:\(victim) did not get its buckets back: \(seen)")
        let status = try lb.wait(seconds: 60)
        #expect(status == 0, "lb: \(lb.stderr)")
        for (k, c) in cats.enumerated() where k != victim { #expect(try c.wait(seconds: 20) == 0, "cat \(k): \(c.stderr)") }
        #expect(try returned.wait(seconds: 20) == 0, "returned cat: \(returned.stderr)")
        #expect(lb.stderr.contains("a:\(victim): consumer gone or stuck; buckets move"))
        #expect(lb.stderr.contains("a:\(victim): back; buckets return"))
        let back = try Self.hashes(dir + "/a\(victim)-back.pcap")
        #expect(back.count > 1000, "the returned consumer got only \(back.count) packets")
        #expect(back.allSatisfy { BucketTables.home(BucketTables.bucket($0), 8) == victim }, "the returned ring got another ring's flows")

        // Where every flow went.
        var victimBucketRing: [Int: Int] = [:]
        var moved = 0, wrong = 0
        var receivers: Set<Int> = []
        for k in 0..<8 {
            for h in try Self.hashes(dir + "/a\(k).pcap") {
                let b = BucketTables.bucket(h), home = BucketTables.home(b, 8)
                if k == victim {
                    if home != victim { wrong += 1 }
                } else if home == victim {
                    moved += 1
                    receivers.insert(k)
                    if let r = victimBucketRing[b], r != k { wrong += 1 } else { victimBucketRing[b] = k }
                } else if home != k {
                    wrong += 1
                }
            }
        }
        #expect(wrong == 0, "\(wrong) packets in a ring other than their flow's (home, or the failed ring's one new ring)")
        #expect(moved > 300, "only \(moved) packets of the killed consumer's flows reached other rings")
        #expect(receivers.count == 7, "the failed ring's buckets went to \(receivers.sorted()) only")
        // Packets kept arriving: the group lost only what came in before failover took over.
        let final = try LBStats(lb.stdout).byName
        let dropped = final["a:\(victim)"]?.int("dropped_no_consumer") ?? -1
        #expect(dropped >= 0 && dropped < 32000 / 8 / 2, "a:\(victim) dropped \(dropped)")
        let forwarded = (0..<8).reduce(0) { $0 + (final["a:\($1)"]?.int("packets_forwarded") ?? 0) }
        #expect(final["a:\(victim)"]?.int("packets_forwarded") ?? 0 > 0)
        #expect(final["a:\(victim)"]?.int("buckets") == 512, "lb's final stats line: \(final["a:\(victim)"] ?? [:])")
        #expect(forwarded + dropped == 32000)
    }

    /// A consumer that writes an out-of-range tail and stops reading is stuck, not busy: its
    /// buckets fail over like any stuck consumer's (the garbage tail once read as progress).
    @Test func aStuckConsumerWithAScribbledTailFailsOver() throws {
        let scratch = try Scratch("failover-scribble")
        let dir = scratch.path
        let trace = try Ops.trace(in: dir, packets: 40000, flows: 400)
        let runDir = dir + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:2", "--run-dir", runDir, "-w", "60",
                                   "--replay-rate", "4000", "--failover", "0.5"], in: dir, label: "lb")
        defer { lb.stop() }
        let cat = try Proc(Ops.lb, ["cat", "a:0", "-w", "/dev/null", "--run-dir", runDir], in: dir, label: "cat0")
        defer { cat.stop() }
        #expect(try eventually(20) { FileManager.default.fileExists(atPath: runDir + "/a.sock") })
        // attach to a:1 by hand and keep the CONTROL region, to scribble in it
        let fd = try Sys.connectUnix(runDir + "/a.sock")
        defer { close(fd) }
        try Sys.send(fd, AttachProtocol.encode(AttachProtocol.Request(group: "a", ring: 1, mode: .consumer)))
        var buffer = [UInt8](repeating: 0, count: AttachProtocol.replySize + 64)
        var pfd = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        try Sys.poll(&pfd, timeoutMillis: 5000)
        let got = try buffer.withUnsafeMutableBytes { try Sys.receive(fd, into: $0, maxFDs: 2) }
        let reply = buffer.withUnsafeBytes { AttachProtocol.decodeReply(UnsafeRawBufferPointer(rebasing: $0[..<(got?.count ?? 0)])) }
        #expect(reply?.error == 0 && got?.fds.count == 2)
        guard let reply, let fds = got?.fds, fds.count == 2 else { return }
        let control = mmap(nil, reply.controlSize, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0)!
        for f in fds { close(f) }
        defer { munmap(control, reply.controlSize) }
        #expect(try eventually(30) { (try? Ops.stats(runDir: runDir, in: dir))?["lb"]?.int("packets_received") ?? 0 > 2000 })
        // a tail far past anything lb published, changed now and then as a broken consumer might
        let tail = (control + Int(LB_CONTROL_LANES)).assumingMemoryBound(to: UInt64.self)
        var moved = false
        _ = try eventually(10) {
            tail.pointee = UInt64.random(in: (1 << 40)...(1 << 50))
            moved = (try? Ops.stats(runDir: runDir, in: dir))?["a:1"]?["failed_over"] as? Bool == true
            return moved
        }
        #expect(moved, "a:1 never failed over: \(lb.stderr)")
        let a0 = (try? Ops.stats(runDir: runDir, in: dir))?["a:0"]
        #expect(a0?.int("buckets") == 4096, "a:0 should hold every bucket: \(a0 ?? [:])")
    }
}
