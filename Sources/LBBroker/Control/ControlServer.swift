import Glibc
import LBRing
import LBSys

/// One ring as the control plane sees it.
public final class RingRecord: @unchecked Sendable {
    public let name: RingName
    public let global: Int
    public let memory: RingMemory
    /// the consumer's connection (-1: none); touched by the control thread only
    var consumerFD: Int32 = -1
    public internal(set) var consumerPID: Int32 = 0
    public internal(set) var attaches: UInt64 = 0

    init(name: RingName, global: Int, memory: RingMemory) {
        self.name = name
        self.global = global
        self.memory = memory
    }
}

/// Serves the control sockets: `<run-dir>/<group>.sock`, one per group name. A consumer
/// connects, asks for ring K, gets the ring's two memfds, and stays attached until its
/// connection closes (which the kernel does for it if it dies).
final class ControlServer {
    struct Listener { let fd: Int32; let group: String; let path: String }
    struct Pending { let fd: Int32; let group: String; let deadline: UInt64 }
    struct Tap { let fd: Int32; let ring: Int }

    let runDir: String
    let rings: [RingRecord]
    let shared: SharedState
    var byGroup: [String: [RingRecord]] = [:]
    var listeners: [Listener] = []
    var pending: [Pending] = []
    var taps: [Tap] = []
    /// messages for the operator (stderr), one per event
    let log: (String) -> Void
    /// --ring-group: the group that owns the sockets and ring memory (nil: lb's own group)
    var ringGroup: gid_t? = nil
    /// `--user`: the sockets are this uid's from the moment they listen (consumers check the
    /// owner as soon as they connect, which can be before lb has dropped its privileges)
    var socketOwner: uid_t? = nil
    /// the answer to a stats request (LB_MODE_STATS); set by `Operations`
    var statsText: (() -> String)? = nil
    /// past the open-file limit (EMFILE/ENFILE) accepting is paused until then, instead of
    /// polling a listener that stays readable (a busy loop)
    var acceptPausedUntil: UInt64 = 0
    /// repeated events are logged at most once a period, with how many there were
    var acceptErrors = LogLimiter(), idleClients = LogLimiter(), slowReaders = LogLimiter()
    /// stats answers that wait for their client's socket to drain
    var outgoing: [Outgoing] = []
    /// rung to end a poll at once (the end of a run)
    var wakeFD: Int32 = (try? Sys.eventfd()) ?? -1
    /// shunt requests (LB_MODE_SHUNT); nil: this lb does not shunt
    var shunts: ShuntService? = nil

    init(runDir: String, rings: [RingRecord], shared: SharedState, log: @escaping (String) -> Void) {
        self.runDir = runDir
        self.rings = rings
        self.shared = shared
        self.log = log
        for r in rings { byGroup[r.name.group, default: []].append(r) }
    }

    /// Creates the run directory and one listening socket per group. A socket left by an lb
    /// that died is replaced; one that answers belongs to a running lb and is an error.
    func start() throws(BrokerError) {
        do { try Sys.mkdirs(runDir) } catch { throw BrokerError("--run-dir \(runDir): \(error)") }
        try RingPermissions.applyToRunDirectory(runDir, group: ringGroup)
        for r in rings { try RingPermissions.applyToRing(r.memory, group: ringGroup) }
        for group in byGroup.keys.sorted() {
            let path = RunDirectory.socketPath(runDir, group: group)
            if let probe = try? Sys.connectUnix(path) {
                Sys.close(probe)
                throw BrokerError("group '\(group)' is already served by another lb (\(path)); stop it or choose another -p name")
            }
            Sys.unlink(path)
            let fd: Int32
            // bound with mode 0600: only lb's user can connect until the group and mode are set
            let old = umask(0o177)
            do { fd = try Sys.listenUnix(path, owner: socketOwner) } catch { umask(old); throw BrokerError("cannot listen on \(path): \(error)") }
            umask(old)
            listeners.append(Listener(fd: fd, group: group, path: path))
            Sys.setNonBlocking(fd, true)
            try RingPermissions.applyToSocket(path, group: ringGroup)
        }
    }

    /// Ends a `poll` in progress (from another thread).
    func wake() { Sys.ring(eventfd: wakeFD) }

    /// Handles whatever is ready within `timeoutMillis`.
    func poll(timeoutMillis: Int32) {
        var fds: [pollfd] = []
        let waiting = pending
        let tapsNow = taps
        let accepting = Sys.monoNanos() >= acceptPausedUntil
        // a paused listener is polled for nothing (events 0): it keeps its place in `fds`
        for l in listeners { fds.append(pollfd(fd: l.fd, events: accepting ? Int16(POLLIN) : 0, revents: 0)) }
        for p in waiting { fds.append(pollfd(fd: p.fd, events: Int16(POLLIN), revents: 0)) }
        let consumers = rings.filter { $0.consumerFD >= 0 }
        for r in consumers { fds.append(pollfd(fd: r.consumerFD, events: Int16(POLLIN) | pollRDHUP, revents: 0)) }
        for t in tapsNow { fds.append(pollfd(fd: t.fd, events: Int16(POLLIN) | pollRDHUP, revents: 0)) }
        let sending = outgoing
        for o in sending { fds.append(pollfd(fd: o.fd, events: Int16(POLLOUT), revents: 0)) }
        if let u = shunts?.udp { fds.append(pollfd(fd: u.fd, events: Int16(POLLIN), revents: 0)) }   // not walked: read below
        fds.append(pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0))      // last: not walked below
        do { try Sys.poll(&fds, timeoutMillis: timeoutMillis) } catch { log("control: \(error)"); return }

        // Walk fds in the order they were built; new connections go to `accepted`.
        var i = 0
        var accepted: [Pending] = []
        for l in listeners {
            if fds[i].revents != 0 { acceptAll(l, into: &accepted) }
            i += 1
        }
        var stillPending: [Pending] = []
        let now = Sys.monoNanos()
        for p in waiting {
            if fds[i].revents != 0 {
                handleRequest(p)
            } else if now > p.deadline {
                if let n = idleClients.allow(now: now) {
                    log("control: \(n) client(s) connected to \(p.group) but sent no request in 2 s; closed")
                }
                Sys.close(p.fd)
            } else {
                stillPending.append(p)
            }
            i += 1
        }
        for r in consumers {
            if fds[i].revents != 0 { detach(r, reason: "disconnected") }
            i += 1
        }
        var stillTaps: [Tap] = []
        for t in tapsNow {
            if fds[i].revents != 0 { Sys.close(t.fd) } else { stillTaps.append(t) }
            i += 1
        }
        // Taps attached above (handleRequest appends to `taps`) are kept too.
        taps = stillTaps + taps.filter { t in !tapsNow.contains { $0.fd == t.fd } }
        var writable: Set<Int32> = []
        for o in sending {
            if fds[i].revents != 0 { writable.insert(o.fd) }
            i += 1
        }
        serviceOutgoing(writable: writable, now: now)
        // Requests that arrived in the same wake-up as their connection.
        for p in accepted where !tryRequest(p) { stillPending.append(p) }
        pending = stillPending
        shunts?.pollUDP(now: Sys.monoNanos())
        shunts?.tick(now: Sys.monoNanos())
    }

    func acceptAll(_ l: Listener, into accepted: inout [Pending]) {
        while true {
            let c: Int32?
            do {
                c = try Sys.accept(l.fd)
            } catch {
                let now = Sys.monoNanos()
                if error.code == EMFILE || error.code == ENFILE {
                    acceptPausedUntil = now + 100_000_000      // let clients leave; look again in 100 ms
                }
                if let n = acceptErrors.allow(now: now) { log("control: accept: \(error) (\(n) time(s)); new connections wait") }
                return
            }
            guard let c else { return }
            accepted.append(Pending(fd: c, group: l.group, deadline: Sys.monoNanos() + 2_000_000_000))
        }
    }

    /// Reads and answers a request if one is there; false if nothing arrived yet.
    func tryRequest(_ p: Pending) -> Bool {
        var fds = [pollfd(fd: p.fd, events: Int16(POLLIN), revents: 0)]
        try? Sys.poll(&fds, timeoutMillis: 0)
        guard fds[0].revents != 0 else { return false }
        handleRequest(p)
        return true
    }

    func handleRequest(_ p: Pending) {
        var buffer = [UInt8](repeating: 0, count: AttachProtocol.requestSize + AttachProtocol.maxPayload + 1)
        let got = buffer.withUnsafeMutableBytes { b in try? Sys.receive(p.fd, into: b, maxFDs: 0) }
        guard let msg = got, msg.count > 0 else {
            Sys.close(p.fd)
            return
        }
        let decoded = buffer.withUnsafeBytes { AttachProtocol.decodeRequest(withPayload: UnsafeRawBufferPointer(rebasing: $0[..<msg.count])) }
        guard let (request, payload) = decoded else {
            refuse(p.fd, EPROTO, "malformed attach request (this lb speaks ring protocol version \(LBRingVersion.current))")
            return
        }
        guard request.group == p.group, let group = byGroup[request.group] else {
            refuse(p.fd, ENOENT, "no group '\(request.group)' on this socket")
            return
        }
        if request.mode == .shunt {
            guard let shunts else {
                refuse(p.fd, ENOTSUP, "this lb does not shunt")
                return
            }
            shunts.request(fd: p.fd, group: request.group, text: payload, now: Sys.monoNanos())
            return
        }
        guard request.ring >= 0, request.ring < group.count else {
            refuse(p.fd, ENOENT, "no ring \(request.group):\(request.ring); this lb has \(request.group):0 to \(request.group):\(group.count - 1)")
            return
        }
        let ring = group[request.ring]
        let g = ring.memory.geometry
        switch request.mode {
        case .consumer:
            if ring.consumerFD >= 0 {
                refuse(p.fd, EBUSY, "\(ring.name) already has a consumer (pid \(ring.consumerPID))")
                return
            }
            ring.memory.clearConsumerFlags()
            var fds = [ring.memory.dataDescriptor, ring.memory.controlDescriptor]
            if request.doorbell { fds.append(ring.memory.doorbellDescriptor) }
            let reply = AttachProtocol.encode(AttachProtocol.Reply(error: 0, message: "attached to \(ring.name)", fdCount: fds.count,
                                                                  dataSize: g.dataRegionSize, controlSize: g.controlRegionSize))
            do {
                try Sys.send(p.fd, reply, fds: fds)
            } catch {
                Sys.close(p.fd)
                return
            }
            ring.consumerFD = p.fd
            ring.consumerPID = Sys.peerCredentials(p.fd)?.pid ?? 0
            ring.attaches += 1
            shared.setWantsShuntReports(ring.global, request.shuntReports)
            shared.setAttached(ring.global, true)
            log("\(ring.name): consumer attached (pid \(ring.consumerPID))")
        case .tap:
            let reply = AttachProtocol.encode(AttachProtocol.Reply(error: 0, message: "tapping \(ring.name)", fdCount: 1,
                                                                  dataSize: g.dataRegionSize, controlSize: 0))
            do {
                try Sys.send(p.fd, reply, fds: [ring.memory.dataDescriptor])
            } catch {
                Sys.close(p.fd)
                return
            }
            taps.append(Tap(fd: p.fd, ring: ring.global))
        case .stats:
            sendStats(p.fd)
        case .shunt:
            break           // answered above
        }
    }

    /// A reply, then text lines in messages of at most 32 KiB, then the connection closes
    /// (sent without blocking, as `sendStats`).
    func sendText(_ fd: Int32, error: Int32, message: String, lines: [String]) {
        var messages = [AttachProtocol.encode(AttachProtocol.Reply(error: error, message: message))]
        var chunk: [UInt8] = []
        for l in lines {
            if chunk.count + l.utf8.count + 1 > 32768 && !chunk.isEmpty { messages.append(chunk); chunk = [] }
            chunk += Array(l.utf8) + [0x0A]
        }
        if !chunk.isEmpty { messages.append(chunk) }
        var o = Outgoing(fd: fd, messages: messages, deadline: Sys.monoNanos() + 2_000_000_000)
        if o.flush() { Sys.close(fd) } else { outgoing.append(o) }
    }

    /// The reply, then the stats text in messages of at most 32 KiB, then the connection closes.
    /// Written without blocking: what the client does not take at once waits in `outgoing` and
    /// goes out as its socket drains, so a client that asks and never reads delays nobody; one
    /// that has not taken everything within 2 s is dropped.
    func sendStats(_ fd: Int32) {
        guard let statsText else {
            refuseOpen(fd, ENOTSUP, "this lb does not serve stats")
            Sys.close(fd)
            return
        }
        let text = Array(statsText().utf8)
        var messages = [AttachProtocol.encode(AttachProtocol.Reply(error: 0, message: "stats"))]
        var at = 0
        while at < text.count {
            let end = min(at + 32768, text.count)
            messages.append(Array(text[at..<end]))
            at = end
        }
        var o = Outgoing(fd: fd, messages: messages, deadline: Sys.monoNanos() + 2_000_000_000)
        if o.flush() { Sys.close(fd) } else { outgoing.append(o) }
    }

    /// Moves what waits in `outgoing` to the clients whose sockets have room (`writable`), and
    /// drops those past their deadline.
    func serviceOutgoing(writable: Set<Int32>, now: UInt64) {
        var still: [Outgoing] = []
        for var o in outgoing {
            if writable.contains(o.fd) && o.flush() {
                Sys.close(o.fd)
            } else if now > o.deadline {
                if let n = slowReaders.allow(now: now) { log("control: \(n) stats reader(s) took too long; dropped") }
                Sys.close(o.fd)
            } else {
                still.append(o)
            }
        }
        outgoing = still
    }

    func refuseOpen(_ fd: Int32, _ code: Int32, _ message: String) {
        try? Sys.send(fd, AttachProtocol.encode(AttachProtocol.Reply(error: code, message: message)))
    }

    func refuse(_ fd: Int32, _ code: Int32, _ message: String) {
        let reply = AttachProtocol.encode(AttachProtocol.Reply(error: code, message: message))
        try? Sys.send(fd, reply)
        Sys.close(fd)
    }

    func detach(_ r: RingRecord, reason: String) {
        shared.setAttached(r.global, false)
        shared.setWantsShuntReports(r.global, false)
        Sys.close(r.consumerFD)
        r.consumerFD = -1
        r.memory.clearConsumerFlags()
        log("\(r.name): consumer \(reason) (pid \(r.consumerPID))")
    }

    var allAttached: Bool { rings.allSatisfy { $0.consumerFD >= 0 } }

    /// Closes every connection and removes the sockets.
    func shutdown() {
        for r in rings where r.consumerFD >= 0 {
            shared.setAttached(r.global, false)
            Sys.close(r.consumerFD)
            r.consumerFD = -1
        }
        for t in taps { Sys.close(t.fd) }
        taps = []
        if let u = shunts?.udp { Sys.close(u.fd); shunts?.udp = nil }
        if wakeFD >= 0 { Sys.close(wakeFD); wakeFD = -1 }
        for o in outgoing { Sys.close(o.fd) }
        outgoing = []
        for p in pending { Sys.close(p.fd) }
        pending = []
        for l in listeners {
            Sys.close(l.fd)
            Sys.unlink(l.path)
        }
        listeners = []
    }
}

/// A stats answer on its way to a client: whole messages (SOCK_SEQPACKET keeps their bounds).
struct Outgoing {
    let fd: Int32
    var messages: [[UInt8]]
    let deadline: UInt64
    var next = 0

    /// Sends what the socket takes now; true when everything went (or the client is gone).
    mutating func flush() -> Bool {
        while next < messages.count {
            do {
                try Sys.send(fd, messages[next])
            } catch {
                return !(error.code == EAGAIN || error.code == EWOULDBLOCK)
            }
            next += 1
        }
        return true
    }
}

/// Logs an event that may repeat at most once per `period`, with the number of times it happened.
struct LogLimiter {
    var period: UInt64 = 10_000_000_000
    var last: UInt64 = 0
    var count = 0

    /// The number of events to report now (this one included), or nil to stay quiet.
    mutating func allow(now: UInt64) -> Int? {
        count += 1
        guard last == 0 || now &- last >= period else { return nil }
        last = now
        defer { count = 0 }
        return count
    }
}

let pollRDHUP: Int16 = 0x2000   // POLLRDHUP (a GNU extension the Glibc module leaves out)

public enum LBRingVersion {
    public static let current = 1
}
