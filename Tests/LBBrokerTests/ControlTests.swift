import Foundation
@testable import LBBroker
import LBRing
import LBSys
import LBTestSupport
import LBWorker
import Testing

/// The control socket: attach, refuse a second consumer, notice a detach, allow a re-attach.
@Suite struct ControlTests {
    final class Server: @unchecked Sendable {
        let server: ControlServer
        let shared: SharedState
        let dir: String
        var running = true
        var thread: pthread_t?

        init(groups: [(String, Int)]) throws {
            dir = NSTemporaryDirectory() + "lb-ctl-\(UUID().uuidString.prefix(8))"
            var records: [RingRecord] = []
            let g = RingGeometry(slots: 64, dataBytes: 1 << 16, maxCaplen: 2048, lanes: 1)
            for (name, n) in groups {
                for k in 0..<n {
                    let m = try RingMemory(name: RingName(group: name, index: k), ringCount: n, geometry: g, instanceID: 1)
                    records.append(RingRecord(name: m.name, global: records.count, memory: m))
                }
            }
            shared = SharedState(ringCount: records.count)
            server = ControlServer(runDir: dir, rings: records, shared: shared, log: { _ in })
            try server.start()
            thread = Threads.spawn("ctl") { [self] in while running { server.poll(timeoutMillis: 10) } }
        }

        func stop() {
            running = false
            if let thread { Threads.join(thread) }
            server.shutdown()
            try? FileManager.default.removeItem(atPath: dir)
        }

        func waitFor(_ condition: () -> Bool) -> Bool { eventually(3, every: 0.002, condition) }
    }

    @Test func attachRefuseDetachReattach() throws {
        let s = try Server(groups: [("zeek", 2)])
        defer { s.stop() }
        let name = RingName(group: "zeek", index: 1)
        try holdFirstAndTrySecond(s, name)          // the first consumer is dropped on return
        #expect(s.waitFor { !s.shared.isAttached(1) })
        try attachAndCheck(s, name)
    }

    func holdFirstAndTrySecond(_ s: Server, _ name: RingName) throws {
        let first = try RingConsumer.attach(name, runDir: s.dir, waitNanos: 1_000_000_000)
        #expect(s.waitFor { s.shared.isAttached(1) })
        #expect(!s.shared.isAttached(0))
        let refusal = attachError(s, name)
        #expect(refusal?.code == EBUSY)
        #expect(refusal?.description.contains("zeek:1 already has a consumer") == true)
        withExtendedLifetime(first) {}
    }

    /// The error attaching gives, or nil if it succeeded.
    func attachError(_ s: Server, _ name: RingName) -> AttachError? {
        do {
            _ = try RingConsumer.attach(name, runDir: s.dir, waitNanos: 1_000_000_000)
            return nil
        } catch {
            return error
        }
    }

    func attachAndCheck(_ s: Server, _ name: RingName) throws {
        let again = try RingConsumer.attach(name, runDir: s.dir, waitNanos: 1_000_000_000)
        #expect(s.waitFor { s.shared.isAttached(1) })
        withExtendedLifetime(again) {}
    }

    @Test func unknownRingIsRefusedWithTheValidRange() throws {
        let s = try Server(groups: [("suricata", 4)])
        defer { s.stop() }
        let e = attachError(s, RingName(group: "suricata", index: 9))
        #expect(e?.code == ENOENT)
        #expect(e?.description.contains("suricata:0 to suricata:3") == true)
    }

    @Test func garbageOnTheSocketIsRefused() throws {
        let s = try Server(groups: [("a", 1)])
        defer { s.stop() }
        let fd = try Sys.connectUnix(s.dir + "/a.sock")
        defer { Sys.close(fd) }
        try Sys.send(fd, [UInt8](repeating: 0x41, count: 48))
        var buf = [UInt8](repeating: 0, count: 512)
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        try Sys.poll(&fds, timeoutMillis: 2000)
        let got = try buf.withUnsafeMutableBytes { try Sys.receive(fd, into: $0, maxFDs: 2) }
        let reply = buf.withUnsafeBytes { AttachProtocol.decodeReply(UnsafeRawBufferPointer(rebasing: $0[..<(got?.count ?? 0)])) }
        #expect(reply?.error == EPROTO)
        #expect(got?.fds.isEmpty == true)
        #expect(!s.shared.isAttached(0))
    }

    @Test func secondLBOnTheSameGroupIsAnError() throws {
        let s = try Server(groups: [("dup", 1)])
        defer { s.stop() }
        let m = try RingMemory(name: RingName(group: "dup", index: 0), ringCount: 1,
                               geometry: RingGeometry(slots: 64, dataBytes: 1 << 16, maxCaplen: 2048, lanes: 1), instanceID: 2)
        let other = ControlServer(runDir: s.dir, rings: [RingRecord(name: m.name, global: 0, memory: m)],
                                  shared: SharedState(ringCount: 1), log: { _ in })
        #expect(throws: BrokerError.self) { try other.start() }
    }
}
