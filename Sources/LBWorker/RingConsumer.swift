import CLBRing
import Glibc
import LBRing
import LBSys

/// Why attaching failed.
public struct AttachError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// errno from lb (EBUSY: the ring already has a consumer), or 0
    public let code: Int32
    public init(_ d: String, code: Int32 = 0) { description = d; self.code = code }
}

/// A consumer (or tap) attached to one ring of a running lb.
///
/// Attach with `RingConsumer.attach`; read with `poll`; sleep with `wait`. Dropping the value
/// detaches (closing the connection tells lb at once; so does dying).
public struct RingConsumer: ~Copyable {
    let socket: OwnedFD
    let ring: AttachedRing
    var lanes: [LaneConsumer]
    var nextLane = 0
    public let name: RingName
    public let isTap: Bool
    /// the run directory lb's sockets are in (for shunt requests)
    public internal(set) var runDir = ""
    /// packets handed to `poll`'s body (or read by `read`/`nextBatch`) so far
    public internal(set) var packets: UInt64 = 0
    /// packets read by `read`/`nextBatch` and not yet handed back to lb with `release`
    public internal(set) var unreleased = 0
    /// what `report` last wrote
    var lastReport: (processed: UInt64, gaps: UInt64, acks: UInt64)? = nil
    /// How `wait` sleeps while traffic flows (see `Nap`): up to 10 ms by default, the block
    /// timeout Suricata and Zeek use with TPACKET_V3. A worker that wants every packet as soon
    /// as lb publishes it sets `nap.maxNanos = 0` (it is then woken per publish).
    public var nap: Nap

    /// What `wait` saw.
    public enum Event: Equatable, Sendable {
        /// packets are ready
        case packets
        /// lb marked end of stream and every packet has been read
        case endOfStream
        /// lb closed the connection without marking end of stream (it exited or died)
        case producerGone
        /// nothing happened within the timeout
        case timeout
    }

    /// Connects to lb's socket for `name.group` in `runDir` and attaches to ring `name.index`.
    /// Retries while lb is not (yet) there, for up to `waitNanos` (nil: forever).
    /// `shuntReports`: the consumer takes LB_F_SHUNT_END records (`ShuntEnd`), the final counts
    /// of the flows it shunted (docs/shunting.md); others never see them.
    public static func attach(_ name: RingName, runDir: String? = nil, waitNanos: UInt64? = nil,
                              tap: Bool = false, shuntReports: Bool = false) throws(AttachError) -> RingConsumer {
        let dir = RunDirectory.resolve(runDir)
        let path = RunDirectory.socketPath(dir, group: name.group)
        let deadline = waitNanos.map { Sys.monoNanos() &+ $0 }
        // lb not there yet: wake when something appears in the run directory (lb binds its
        // socket, then sets its mode), not on a fixed retry period
        var watch: DirectoryWatch? = nil
        var watching = false
        while true {
            do {
                let fd = try Sys.connectUnix(path)
                do { try OwnerCheck.checkSocket(path: path, fd: fd) } catch { Sys.close(fd); throw error }
                var c = try handshake(fd: fd, name: name, tap: tap, shuntReports: shuntReports)
                c.runDir = dir
                return c
            } catch let e as SysError where e.code == ENOENT || e.code == ECONNREFUSED {
                if let deadline, Sys.monoNanos() >= deadline {
                    throw AttachError("no lb serves '\(name.group)' at \(path) (is lb running with -p \(name.group):N and the same --run-dir?)")
                }
                if e.code == ECONNREFUSED {
                    Sys.sleep(nanos: 1_000_000)          // bound, not yet listening: a moment
                } else {
                    if !watching { watch = DirectoryWatch(dir); watching = watch != nil }
                    let left = deadline.map { Int64($0) - Int64(Sys.monoNanos()) } ?? 1_000_000_000
                    if watching {
                        watch?.wait(timeoutMillis: Int32(max(1, min(left / 1_000_000, 1000))))
                    } else {
                        Sys.sleep(nanos: 10_000_000)     // no directory yet
                    }
                }
            } catch let e as SysError where e.code == EACCES {
                throw AttachError("\(path): permission denied: only lb's user and members of its --ring-group may attach", code: EACCES)
            } catch let e as SysError {
                throw AttachError("\(path): \(e)")
            } catch let e as AttachError {
                throw e
            } catch {
                throw AttachError("\(error)")
            }
        }
    }

    static func handshake(fd: Int32, name: RingName, tap: Bool, shuntReports: Bool) throws -> RingConsumer {
        let owned = OwnedFD(fd)
        let request = AttachProtocol.encode(AttachProtocol.Request(group: name.group, ring: name.index, mode: tap ? .tap : .consumer,
                                                                   shuntReports: shuntReports && !tap))
        try Sys.send(fd, request)
        var buffer = [UInt8](repeating: 0, count: AttachProtocol.replySize + 64)
        var got: (count: Int, fds: [Int32])? = nil
        var fdsPoll = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        try Sys.poll(&fdsPoll, timeoutMillis: 5000)
        got = try buffer.withUnsafeMutableBytes { b in try Sys.receive(fd, into: b, maxFDs: 2) }
        guard let got, got.count > 0 else { throw AttachError("lb closed the connection without answering") }
        let descriptors = got.fds.map { OwnedFDBox($0) }
        let reply = buffer.withUnsafeBytes { AttachProtocol.decodeReply(UnsafeRawBufferPointer(rebasing: $0[..<got.count])) }
        guard let reply else { throw AttachError("unreadable reply from lb (ring protocol version mismatch?)") }
        guard reply.error == 0 else { throw AttachError(reply.message, code: reply.error) }
        guard descriptors.count == (tap ? 1 : 2) else { throw AttachError("lb sent \(descriptors.count) descriptors") }
        for d in descriptors { try OwnerCheck.checkRing(fd: d.fd, name: name) }
        // The descriptors must stay open until they are mapped: Swift may release `descriptors`
        // (and so close them) right after its last use, before the mapping.
        let ring: AttachedRing
        do {
            ring = try withExtendedLifetime(descriptors) { () throws(AttachedRing.Problem) -> AttachedRing in
                try AttachedRing(dataFD: descriptors[0].fd, dataSize: reply.dataSize,
                                 controlFD: tap ? nil : descriptors[1].fd, controlSize: reply.controlSize)
            }
        } catch {
            throw AttachError("\(name): \(error)")
        }
        return RingConsumer(socket: owned, ring: ring, name: name, isTap: tap)
    }

    init(socket: consuming OwnedFD, ring: consuming AttachedRing, name: RingName, isTap: Bool) {
        self.socket = socket
        self.name = name
        self.isTap = isTap
        var lanes: [LaneConsumer] = []
        for k in 0..<ring.lanes { lanes.append(ring.lane(k)) }
        self.lanes = lanes
        nap = Nap(maxNanos: 10_000_000, roomPackets: UInt64(ring.info.desc_count) / 4, roomBytes: ring.info.data_size / 4)
        self.ring = ring
    }

    /// The largest packet the ring stores (the snaplen to write into a pcap header).
    public var maxCaplen: Int { Int(ring.info.max_caplen) }
    public var group: String { ring.group }

    /// Calls `body` for up to `max` packets, then hands them back to lb. Returns how many.
    public mutating func poll(max: Int, _ body: (RingPacket) -> Void) -> Int {
        var n = 0
        var emptyLanes = 0
        while n < max && emptyLanes < lanes.count {
            let k = nextLane
            if let p = lanes[k].next() {
                body(p)
                n += 1
                nap.count(packets: 1, bytes: p.bytes.count)
                emptyLanes = 0
            } else {
                emptyLanes += 1
                nextLane = (nextLane + 1) % lanes.count
            }
        }
        if n > 0 { nextLane = nextLane + 1 == lanes.count ? 0 : nextLane + 1 }   // no lane starves the others
        if n > 0 || unreleased > 0 {
            for k in lanes.indices { lanes[k].release() }
            packets &+= UInt64(n)
            unreleased = 0
        }
        return n
    }

    /// Sleeps until packets arrive, the stream ends, lb goes away, or the timeout passes.
    /// While traffic flows it naps (see `nap`) instead of asking lb to wake it, so packets
    /// gather and one wake-up serves many; after an idle look it sleeps until lb wakes it.
    public mutating func wait(timeoutNanos: Int64) -> Event {
        if let e = settled() { return e }
        let d = nap.next(now: Sys.monoNanos())
        if d > 0 {
            Sys.sleep(nanos: timeoutNanos > 0 ? min(d, UInt64(timeoutNanos)) : d)
            return settled() ?? .timeout
        }
        lanes[nextLane].wait(timeoutNanos: timeoutNanos)
        return settled() ?? .timeout
    }

    /// Packets ready, end of stream, lb gone, or nil (nothing yet). The state is loaded before
    /// the heads: lb publishes its last packets before it stores LB_STATE_EOS, so a consumer
    /// that sees EOS and then empty lanes has really read everything.
    func settled() -> Event? {
        let state = ring.state
        if hasPackets() { return .packets }
        if state == LB_STATE_EOS || state == LB_STATE_CLOSED { return .endOfStream }
        if producerGone() {
            if hasPackets() { return .packets }
            // lb may have marked the end, drained and exited between the first look at the
            // state and this one: the mark was stored before lb closed its socket.
            let now = ring.state
            return now == LB_STATE_EOS || now == LB_STATE_CLOSED ? .endOfStream : .producerGone
        }
        return nil
    }

    func hasPackets() -> Bool {
        for k in lanes.indices where lanes[k].currentHead() != lanes[k].position { return true }
        return false
    }

    /// Packets published but not yet read (a tap that falls behind uses this to skip).
    public func backlog() -> [UInt64] { lanes.map { $0.currentHead() &- $0.position } }

    /// Writes the consumer's report into the ring's control area (lb shows it in its stats).
    public mutating func report(processed: UInt64, lossGaps: UInt64 = 0, lossAcks: UInt64 = 0) {
        ring.report(processed: processed, lossGaps: lossGaps, lossAcks: lossAcks)
        lastReport = (processed, lossGaps, lossAcks)
    }

    /// An idle worker is not a stuck one: when `nextBatch` times out, the last report is written
    /// again with a new time, so `worker_report_age_s` stays small while the worker keeps
    /// calling. A worker that never reported is left alone (lb shows that as no report).
    mutating func refreshReport() {
        guard let r = lastReport else { return }
        ring.report(processed: r.processed, lossGaps: r.gaps, lossAcks: r.acks)
    }

    func producerGone() -> Bool { Sys.readable(socket.raw) }
}

/// Closes received descriptors once mapped (the mappings keep the memory alive).
final class OwnedFDBox {
    let fd: Int32
    init(_ fd: Int32) { self.fd = fd }
    deinit { Sys.close(fd) }
}
