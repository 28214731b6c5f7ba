import CLBRing
import Glibc
import LBCore
import LBRing
import LBSys
import Synchronization

/// `-p [NAME:]N`: a group of N rings; every group gets every packet.
public struct GroupSpec: Equatable, Sendable {
    public var name: String
    public var count: Int
    public init(name: String, count: Int) { self.name = name; self.count = count }
}

/// Where packets come from.
public enum InputSpec: Equatable, Sendable {
    case pcapFile(path: String, rate: UInt64)
    /// `udp::ADDR:PORT[:ENCAP][:dlt=LINK]`: mirrored traffic on a UDP socket (Zeek's grammar)
    case udp(DatagramSpec, UDPOptions)
    /// AF_XDP with lb's XDP program; queues nil = every RX queue
    case afXDP(interface: String, queues: [Int]?)
    /// AF_PACKET with a TPACKET_V3 ring
    case afPacket(interface: String)

    public var name: String {
        switch self {
        case .pcapFile(let path, _): "pcap:\(path)"
        case .udp(let spec, _): spec.description
        case .afXDP(let iface, let queues): "af_xdp:\(iface)" + (queues.map { "@" + $0.map(String.init).joined(separator: ",") } ?? "")
        case .afPacket(let iface): "af_packet:\(iface)"
        }
    }
}

/// Everything `lb` (the main command) needs to run.
public struct BrokerConfig: Sendable {
    public var input: InputSpec
    public var groups: [GroupSpec]
    public var geometry = RingGeometry.default
    public var dispatch = DispatchConfig()
    public var runDir: String? = nil
    /// print stats every this many seconds (0: only the final report)
    public var statsInterval: Double = 0
    /// wait at most this long for every ring to have a consumer before reading input
    public var waitForConsumers: Double = 10
    /// after the end of a capture, wait at most this long for consumers to read everything
    public var drainTimeout: Double = 60
    /// move a failed ring's buckets to its group's live rings (see Failover.swift)
    public var failover = FailoverMode.auto
    /// serve Prometheus metrics on ADDR:PORT
    public var metricsAddress: String? = nil
    /// the group whose members may attach to the rings (--ring-group)
    public var ringGroup: String? = nil
    /// live sources (af_xdp, af_packet): --divert, --xdp-mode, --cpus, ...
    public var live = LiveOptions()
    /// after setup, run as this user (--user)
    public var user: String? = nil
    /// dumbno-compatible shunt requests on UDP ADDR:PORT (--shunt-udp), for these groups, from
    /// loopback and these addresses, each ending after this idle time
    public var shuntUDP: String? = nil
    public var shuntUDPGroups: [String] = []
    public var shuntUDPAllow: [String] = []
    public var shuntUDPIdle: Double = 60
    /// forwarded groups' member counters (the lb executable's forwarder threads)
    public var forwardCounts: (@Sendable () -> (fragmented: [(String, UInt64)], sendErrors: [(String, UInt64)], downs: [(String, UInt64)]))? = nil
    /// drop a packet equal to one seen less than this long ago (--dedup; 0: off)
    public var dedupWindowNanos: UInt64 = 0
    public init(input: InputSpec, groups: [GroupSpec]) { self.input = input; self.groups = groups }
}

/// The stop flag the signal handlers set (a signal handler can reach only globals).
let signalStop = Atomic<UInt32>(0)

/// Runs lb: creates the rings, serves consumers, moves packets, reports.
public enum Broker {
    /// Runs to completion; returns the process exit status.
    public static func run(_ config: BrokerConfig, stdout: Int32 = 1, stderr: Int32 = 2) throws(BrokerError) -> Int32 {
        let log: @Sendable (String) -> Void = { msg in try? Sys.write(stderr, "lb: \(msg)\n") }
        if let problem = config.geometry.problem { throw BrokerError(problem) }
        // Before anything is set up: a SIGTERM while the XDP program attaches or the rings are
        // made (MAP_POPULATE takes a while for large rings) is a stop request, not a kill.
        installSignalHandlers()
        for (a, b, v) in config.dispatch.tenantTag?.clashes() ?? [] {
            log("warning: --tenant-map: tunnel ids \(a) and \(b) both get VLAN \(v); their tenants share it (counted in tenant_collisions)")
        }
        let runDir = RunDirectory.resolve(config.runDir)
        // The input is opened before any ring or socket exists: a bad file, a port in use or an
        // interface lb cannot attach to stops lb before consumers started beside it find a
        // socket and wait for nothing. A live source's queue count is the rings' lane count.
        let ingress: any Ingress
        switch config.input {
        case .pcapFile(let path, let rate):
            ingress = SingleLaneIngress(try PcapFileSource(path: path, rate: rate))
        case .udp(let spec, let options):
            let stats = UDPStats(top: options.vniTop)
            let source = try UDPSource(spec, rcvbuf: options.rcvbuf, reusePort: options.reusePort, batch: config.dispatch.batch,
                                       tunnelPorts: config.dispatch.decode.tunnelPorts, stats: stats, log: log)
            log("listening on \(spec.description) (port \(source.port))")
            ingress = SingleLaneIngress(source, udp: stats)
        case .afXDP, .afPacket:
            ingress = try LiveIngress.open(config.input, options: config.live, log: log)
        }
        var geometry = config.geometry
        geometry.lanes = ingress.lanes
        if let problem = geometry.problem { throw BrokerError(problem) }
        let s = try setUp(config, geometry: geometry, runDir: runDir, log: log)
        defer { s.server.shutdown() }
        return try serve(ingress, config, s, stdout: stdout, log: log)
    }

    /// The dumbno-compatible UDP listener for shunt requests (docs/shunting.md).
    static func openShuntUDP(_ spec: String, _ config: BrokerConfig, _ service: ShuntService,
                             log: @Sendable (String) -> Void) throws(BrokerError) {
        let (address, port) = try Operations.parseListenAddress(spec, option: "--shunt-udp")
        let names = Set(config.groups.map(\.name))
        guard !config.shuntUDPGroups.isEmpty else {
            throw BrokerError("--shunt-udp needs --shunt-udp-groups: the groups its requests may shunt")
        }
        for g in config.shuntUDPGroups where !names.contains(g) {
            throw BrokerError("--shunt-udp-groups: no group '\(g)' (the groups are \(names.sorted().joined(separator: ", ")))")
        }
        var allowed: Set<String> = []
        for a in config.shuntUDPAllow {
            guard let parsed = Sys.parseAddress(a) else { throw BrokerError("--shunt-udp-allow \(a): not an IPv4 or IPv6 address") }
            allowed.insert(Sys.formatAddress(hi: parsed.hi, lo: parsed.lo))
        }
        guard let parsed = Sys.parseAddress(address) else { throw BrokerError("--shunt-udp \(spec): bad address") }
        let v6 = address.contains(":")
        var bytes: [UInt8] = []
        if v6 {
            for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: parsed.hi >> UInt64(56 - 8 * i))) }
            for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: parsed.lo >> UInt64(56 - 8 * i))) }
        } else {
            for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: parsed.lo >> UInt64(24 - 8 * i))) }
        }
        let fd: Int32
        do {
            fd = try Sys.udpSocket(ipv6: v6)
            do { try Sys.bindUDP(fd, address: bytes, port: port) } catch { Sys.close(fd); throw error }
        } catch {
            throw BrokerError("--shunt-udp \(spec): \(error)")
        }
        let got = (try? Sys.localPort(fd)) ?? port
        service.udp = ShuntService.UDPListener(fd: fd, groups: config.shuntUDPGroups, allowed: allowed, idleSeconds: config.shuntUDPIdle)
        log("shunt requests (dumbno's JSON) on udp \(v6 ? "[\(address)]" : address):\(got) for \(config.shuntUDPGroups.joined(separator: ", "))")
    }

    /// The rings, their shared state and the control server, made once the input is open.
    final class Setup {
        let records: [RingRecord]
        let groupMemories: [[RingMemory]]
        let shared: SharedState
        let server: ControlServer
        init(records: [RingRecord], groupMemories: [[RingMemory]], shared: SharedState, server: ControlServer) {
            self.records = records; self.groupMemories = groupMemories; self.shared = shared; self.server = server
        }
    }

    static func setUp(_ config: BrokerConfig, geometry: RingGeometry, runDir: String,
                      log: @escaping @Sendable (String) -> Void) throws(BrokerError) -> Setup {
        // The rings are pre-faulted: their memory must be there, or the kernel kills lb later.
        let ringTotal = config.groups.reduce(0) { $0 + $1.count }
        let need = UInt64(ringTotal) * UInt64(geometry.dataRegionSize + geometry.controlRegionSize)
        if let available = Sys.memAvailable(), need > available / 10 * 9 {
            throw BrokerError("\(ringTotal) rings of \(geometry.dataRegionSize >> 20) MiB need \(need >> 20) MiB; the host has \(available >> 20) MiB available (lower --ring-size or --ring-slots, or use fewer rings)")
        }
        // Rings: groups that share a name continue its numbering (netmap lb's rule).
        let instance = UInt64.random(in: 1...UInt64.max)
        var records: [RingRecord] = []
        var groupMemories: [[RingMemory]] = []
        var nextIndex: [String: Int] = [:]
        for g in config.groups {
            var memories: [RingMemory] = []
            let ringTotal = config.groups.filter { $0.name == g.name }.reduce(0) { $0 + $1.count }
            for _ in 0..<g.count {
                let k = nextIndex[g.name, default: 0]
                nextIndex[g.name] = k + 1
                let name = RingName(group: g.name, index: k)
                let memory: RingMemory
                do {
                    memory = try RingMemory(name: name, ringCount: ringTotal, geometry: geometry, instanceID: instance)
                } catch {
                    throw BrokerError("cannot create ring \(name): \(error) (lower --ring-size or --ring-slots?)")
                }
                memories.append(memory)
                records.append(RingRecord(name: name, global: records.count, memory: memory))
            }
            groupMemories.append(memories)
        }
        let shared = SharedState(ringCount: records.count,
                                 dedup: config.dedupWindowNanos > 0 ? DedupTable(windowNanos: config.dedupWindowNanos) : nil)
        shared.buckets = BucketTables(groupSizes: config.groups.map(\.count))
        let server = ControlServer(runDir: runDir, rings: records, shared: shared, log: log)
        server.ringGroup = try RingPermissions.groupID(config.ringGroup)
        // --user: looked up once; the sockets are the user's from the start
        var user: (name: String, uid: UInt32, gid: UInt32)? = nil
        if let name = config.user {
            guard let (uid, gid) = Sys.lookupUser(name) else { throw BrokerError("--user \(name): no such user") }
            user = (name, uid, gid)
            server.socketOwner = uid
        }
        do { try server.start() } catch {
            server.shutdown()           // sockets already made go too
            throw error
        }
        if let user {
            do {
                try dropPrivileges(to: user, rings: records, log: log)
            } catch {
                server.shutdown()
                throw error
            }
        }
        return Setup(records: records, groupMemories: groupMemories, shared: shared, server: server)
    }

    /// The one serve path: the operator side and the control thread, the wait for consumers,
    /// the input until its end or a stop, the end of the stream, the final report.
    static func serve(_ ingress: any Ingress, _ config: BrokerConfig, _ s: Setup, stdout: Int32,
                      log: @escaping @Sendable (String) -> Void) throws(BrokerError) -> Int32 {
        s.shared.laneCounters = ingress.laneCounters(ringCount: s.shared.ringCount)
        s.shared.shuntChannels = (0..<ingress.lanes).map { _ in ShuntChannel(groupCount: s.groupMemories.count) }
        let server = s.server
        server.shunts = ShuntService(channels: s.shared.shuntChannels, groups: s.groupMemories.map { $0.first?.name.group ?? "" },
                                     decode: config.dispatch.decode) {
            [weak server] fd, error, message, lines in     // weak: the server owns the service
            server?.sendText(fd, error: error, message: message, lines: lines)
        }
        let ops = try Operations.install(config: config, isLive: ingress.isLive, server: s.server, records: s.records,
                                         shared: s.shared, log: log)
        ops.shunts = server.shunts
        ops.tenantTagging = config.dispatch.tenantTag != nil
        ops.forward = config.forwardCounts
        server.shunts?.xdp = ingress.xdpShunts
        server.shunts?.tapsAttached = { [weak server] in !(server?.taps.isEmpty ?? true) }
        if let spec = config.shuntUDP { try openShuntUDP(spec, config, server.shunts!, log: log) }
        let reporter = StatsReporter(operations: ops)
        ingress.report(to: ops, reporter, shared: s.shared)

        // The control thread: attaches, heartbeats, periodic stats, operations.
        let controlStop = Atomic<UInt32>(0)
        let control = ControlThread(server: s.server, reporter: reporter, records: s.records, shared: s.shared,
                                    interval: config.statsInterval, out: stdout)
        control.hooks.append { now in ops.tick(now: now) }
        let tid = Threads.spawn("lb-control") { control.loop(stop: controlStop) }

        waitForConsumers(server: s.server, records: s.records, seconds: config.waitForConsumers, shared: s.shared, log: log)
        // A stop during the wait: a capture is not started; a live source still takes what its
        // socket buffered meanwhile (the dispatcher goes straight to draining), so that the
        // final counts cover it.
        if !s.shared.stopRequested || ingress.isLive {
            ingress.run(config: config.dispatch, groups: s.groupMemories, shared: s.shared, cpus: config.live.cpus, log: log)
        }
        if !ingress.isLive { ops.inputUnread.store(UInt64(ingress.unreadBytes), ordering: .releasing) }
        if let why = ingress.stoppedEarly { log("\(config.input.name): \(why); replay stopped there, the split is partial (exit status \(Broker.partialExit))") }

        // End of stream: tell every consumer, let them drain (not after a live run's signal), report, leave.
        for r in s.records { r.memory.setState(LB_STATE_EOS) }
        if ingress.drainsAtEnd { drain(records: s.records, shared: s.shared, seconds: config.drainTimeout, log: log) }
        controlStop.store(1, ordering: .releasing)
        s.server.wake()                 // out of its poll now, not at its next timeout
        Threads.join(tid)
        for line in reporter.lines(final: true) { try? Sys.write(stdout, line + "\n") }
        for r in s.records { r.memory.setState(LB_STATE_CLOSED) }
        return ingress.stoppedEarly == nil ? 0 : Broker.partialExit
    }

    /// lb's exit status when a capture replay stopped at a damaged or truncated record: the
    /// consumers got everything before it, but not the whole file.
    public static let partialExit: Int32 = 3

    static func installSignalHandlers() {
        // A parent may have started lb with these blocked (a thread of a thread pool does):
        // lb must still stop on them.
        Sys.unblockSignals([SIGINT, SIGTERM])
        signal(SIGINT) { _ in signalStop.store(1, ordering: .relaxed) }
        signal(SIGTERM) { _ in signalStop.store(1, ordering: .relaxed) }
        signal(SIGPIPE, SIG_IGN)
    }

    static func waitForConsumers(server: ControlServer, records: [RingRecord], seconds: Double, shared: SharedState,
                                 log: (String) -> Void) {
        // a stop that came before or during the wait is a stop request from here on
        defer { if signalStop.load(ordering: .relaxed) != 0 { shared.requestStop() } }
        guard seconds > 0 else { return }
        let deadline = Sys.monoNanos() &+ UInt64(seconds * 1e9)
        var said = false
        while Sys.monoNanos() < deadline && signalStop.load(ordering: .relaxed) == 0 {
            let seen = shared.attachEvents.load(ordering: .acquiring)
            if records.allSatisfy({ shared.isAttached($0.global) }) { return }
            if !said {
                let missing = records.filter { !shared.isAttached($0.global) }.map(\.name)
                log("waiting up to \(Int(seconds)) s for consumers of \(missing.count) ring(s): \(RingList.summary(missing))")
                said = true
            }
            // woken by the control thread when a consumer attaches (a signal ends the wait
            // within 50 ms)
            shared.waitForAttachEvent(since: seen, timeoutNanos: Int64(min(deadline &- Sys.monoNanos(), 50_000_000)))
        }
        let missing = records.filter { !shared.isAttached($0.global) }.map(\.name)
        if !missing.isEmpty { log("starting without consumers for \(missing.count) ring(s): \(RingList.summary(missing)); their packets are dropped and counted") }
    }

    /// Waits until every attached consumer has read everything (or detached), or the timeout.
    static func drain(records: [RingRecord], shared: SharedState, seconds: Double, log: (String) -> Void) {
        let deadline = Sys.monoNanos() &+ UInt64(seconds * 1e9)
        while Sys.monoNanos() < deadline {
            let busy = records.filter { shared.isAttached($0.global) && !$0.memory.drained }
            if busy.isEmpty { return }
            if signalStop.load(ordering: .relaxed) != 0 { return }
            Sys.sleep(nanos: 1_000_000)
        }
        let busy = records.filter { shared.isAttached($0.global) && !$0.memory.drained }
        if !busy.isEmpty { log("gave up waiting for \(busy.count) ring(s) to drain: \(RingList.summary(busy.map(\.name)))") }
    }
}

/// The control thread's loop: serve the sockets, heartbeat the rings, print periodic stats.
final class ControlThread: @unchecked Sendable {
    let server: ControlServer
    let reporter: StatsReporter
    let records: [RingRecord]
    let shared: SharedState
    let interval: Double
    let out: Int32
    /// called once per loop with the monotonic time (operations: health, failover, metrics)
    var hooks: [(UInt64) -> Void] = []

    init(server: ControlServer, reporter: StatsReporter, records: [RingRecord], shared: SharedState, interval: Double, out: Int32) {
        (self.server, self.reporter, self.records) = (server, reporter, records)
        (self.shared, self.interval, self.out) = (shared, interval, out)
    }

    func loop(stop: borrowing Atomic<UInt32>) {
        var nextBeat: UInt64 = 0
        var nextStats = interval > 0 ? Sys.monoNanos() &+ UInt64(interval * 1e9) : UInt64.max
        while stop.load(ordering: .acquiring) == 0 {
            if signalStop.load(ordering: .relaxed) != 0 { shared.requestStop() }
            server.poll(timeoutMillis: 50)
            let now = Sys.monoNanos()
            for h in hooks { h(now) }
            if now >= nextBeat {
                let wall = Sys.wallNanos()
                let upstream = reporter.upstreamDrops?() ?? 0
                for r in records {
                    r.memory.heartbeat(wall)
                    r.memory.setIngressDrops(upstream)
                }
                nextBeat = now &+ 1_000_000_000
            }
            if now >= nextStats {
                for line in reporter.lines(final: false) { try? Sys.write(out, line + "\n") }
                nextStats = now &+ UInt64(interval * 1e9)
            }
        }
    }
}

