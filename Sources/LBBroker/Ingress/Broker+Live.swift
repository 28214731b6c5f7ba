import CLBRing
import CLBXdp
import Glibc
import LBRing
import LBSys
import Synchronization

extension Broker {
    /// Runs a live source until SIGINT or SIGTERM: one dispatch thread per queue, the control
    /// thread as for a capture; at the end the consumers get the end of the stream, and the
    /// caller's deinit of `live` detaches the XDP program and closes the sockets.
    static func runLive(_ live: LiveIngress, config: BrokerConfig, server: ControlServer, records: [RingRecord],
                        groups: [[RingMemory]], shared: SharedState, stdout: Int32,
                        log: @escaping @Sendable (String) -> Void) throws(BrokerError) -> Int32 {
        shared.laneCounters = live.makeLaneCounters(ringCount: shared.ringCount)
        let ops = try Operations.install(config: config, isLive: true, server: server, records: records,
                                         shared: shared, log: log)
        let reporter = StatsReporter(operations: ops)
        ops.ingress = { live.statsObject(shared: shared.counters) }
        reporter.upstreamDrops = { live.upstreamDrops() }
        // a live source runs until a signal (Broker.run installed the handlers first thing)
        let controlStop = Atomic<UInt32>(0)
        let control = ControlThread(server: server, reporter: reporter, records: records, shared: shared,
                                    interval: config.statsInterval, out: stdout)
        control.hooks.append { now in ops.tick(now: now) }
        let tid = Threads.spawn("lb-control") { control.loop(stop: controlStop) }
        // A live start-up barrier: packets wait in the kernel's rings while consumers come up.
        waitForConsumers(server: server, records: records, seconds: config.waitForConsumers, shared: shared, log: log)
        // after a stop during the wait the threads only take what the sockets buffered meanwhile
        live.run(config: config.dispatch, groups: groups, shared: shared, cpus: config.live.cpus, log: log)
        for r in records { r.memory.setState(LB_STATE_EOS) }
        controlStop.store(1, ordering: .releasing)
        Threads.join(tid)
        for line in reporter.lines(final: true) { try? Sys.write(stdout, line + "\n") }
        for r in records { r.memory.setState(LB_STATE_CLOSED) }
        return 0
    }

    /// `--user NAME`: after the sockets, the XDP program and the rings exist, lb needs no
    /// privilege; it becomes NAME (all threads; every capability is gone).
    static func dropPrivileges(to user: String, runDir: String, groups: [String], rings: [RingRecord],
                               log: (String) -> Void) throws(BrokerError) {
        guard let (uid, gid) = Sys.lookupUser(user) else { throw BrokerError("--user \(user): no such user") }
        // The sockets and the ring memory become the user's: consumers check that they belong to
        // the user lb runs as (LB_USER), and consumers running as that user can connect. The
        // group stays --ring-group's when there is one. (The directory is left as it is: a
        // socket lb cannot remove at the end is replaced by the next lb.)
        for group in Set(groups) {
            let path = RunDirectory.socketPath(runDir, group: group)
            if Glibc.chown(path, uid, uid_t.max) != 0 { throw BrokerError("--user \(user): cannot give \(path) to uid \(uid): \(SysError("chown"))") }
        }
        for r in rings {
            for fd in [r.memory.dataDescriptor, r.memory.controlDescriptor] where fchown(fd, uid, uid_t.max) != 0 {
                throw BrokerError("--user \(user): cannot give the memory of \(r.name) to uid \(uid): \(SysError("fchown"))")
            }
        }
        var err = [CChar](repeating: 0, count: 256)
        guard lbx_drop_to_user(uid, gid, &err, err.count) == 0 else {
            throw BrokerError("--user \(user): \(LiveIngress.errorText(err))")
        }
        log("running as \(user) (uid \(uid)) from now on")
    }
}
