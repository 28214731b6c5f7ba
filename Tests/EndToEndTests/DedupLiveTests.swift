import Foundation
import LBCore
import LBGen
import Testing

/// Deduplication across RX queues: lb on a veth of two queues (AF_XDP, one data-path thread
/// per queue). The sender's transmit queue is chosen by XPS from the sending CPU, and a veth
/// delivers on the receive queue of the same number: the originals, sent from CPU 0, all
/// arrive on queue 0, their copies (another VLAN tag, another VXLAN tunnel, a lower TTL),
/// sent at the same time from CPU 1, all on queue 1. Each copy meets its original in the table
/// the two threads share.
@Suite(.serialized) struct DedupLiveTests {
    @Test func copiesOnTheOtherQueueAreDropped() throws {
        let n = 400
        let scratch = try ScratchDirectory("dedup-live")
        var originals: [(timestampNanos: UInt64, bytes: [UInt8])] = [], copies = originals
        for i in 0..<n {
            let ip = DedupEndToEndTests.inner(i, ttl: 64)
            let at = DedupEndToEndTests.t0 + UInt64(i) * 1_000_000
            originals.append((at, DedupEndToEndTests.frame(i, ip, variant: i / 3)))
            copies.append((at, DedupEndToEndTests.copy(i, ip, kind: i)))
        }
        let a = scratch.path + "/originals.pcap", b = scratch.path + "/copies.pcap"
        try DedupEndToEndTests.write(originals, to: a)
        try DedupEndToEndTests.write(copies, to: b)

        let veth = try VethPair(queues: 2)
        defer { veth.remove() }
        // XPS: transmit queue k for CPU k, on the sender's side
        try VethPair.run("/usr/sbin/ip", ["netns", "exec", veth.nsB, "sh", "-c",
                                          "echo 1 > /sys/class/net/\(veth.b)/queues/tx-0/xps_cpus && echo 2 > /sys/class/net/\(veth.b)/queues/tx-1/xps_cpus"])
        var run = LBRun(dir: scratch.path, groups: [("d", 2)])
        try LiveIngressTests.startLB(&run, veth: veth, input: veth.a, extra: ["--cpus", "0,1", "--xdp-frames", "4096", "--dedup", "2s"])
        defer { if let lb = run.lb { lb.signal(SIGKILL) } }
        try run.startConsumers()
        try LiveIngressTests.waitFor(run, "consumer attached", count: 2)
        // both at once, 1000 packets per second each: a copy comes within milliseconds of its original
        let senders = try [(a, 0), (b, 1)].map { file, cpu in
            try Tool("/usr/sbin/ip", ["netns", "exec", veth.nsB, "taskset", "-c", "\(cpu)", "tcpreplay", "-i", veth.b, "--pps", "1000", file],
                     in: scratch.path, label: "tcpreplay\(cpu)")
        }
        for s in senders {
            let status = try s.wait(seconds: 120)
            try #require(status == 0, "tcpreplay: \(s.stdout) \(s.stderr)")
        }
        let stats = try LiveIngressTests.stop(run)
        #expect(stats.int("packets_received") == 2 * n)
        let q0 = stats.int("ingress", "queue_packets", "0"), q1 = stats.int("ingress", "queue_packets", "1")
        #expect(q0 == n && q1 == n, "originals on queue 0, copies on queue 1: \(q0), \(q1)")
        #expect(stats.int("packets_deduplicated") == n, "\(stats)")
        let delivered = try run.rings.reduce(0) { $0 + (try LBRun.count(run.files($1)[0], dir: scratch.path)) }
        #expect(delivered == n)
    }
}
