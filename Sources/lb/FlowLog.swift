import ArgumentParser
import CLBRing
import Glibc
import LBFlow
import LBRing
import LBSys
import LBWorker
import Synchronization

struct FlowLog: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowlog",
        abstract: "Consume a ring and write Zeek-compatible conn.log (and capture_loss.log): the reference analyzer worker.",
        discussion: """
            lb flowlog zeek:3                      conn.log (Zeek TSV) to standard output
            lb flowlog zeek:3 --json -d logs       conn.log and capture_loss.log as JSON lines in logs/
            The worker reports packets processed and its capture-loss estimate (gaps/acks) to lb.
            """)

    @Argument(help: "The ring, NAME:K.", transform: Arguments.ringName)
    var ring: RingName

    @Flag(help: "JSON lines instead of Zeek's tab-separated format.")
    var json = false

    @Option(name: [.customShort("d"), .long], help: "Write conn.log and capture_loss.log into DIR instead of conn.log to standard output.")
    var directory: String?

    @Option(help: "With -d: rotate the logs every SECS seconds of packet time (0: never).", transform: Arguments.seconds)
    var rotate: Double = 0

    @Option(help: "With standard output: also write capture_loss.log to FILE.")
    var lossLog: String?

    @Option(help: "Capture-loss measurement interval in seconds of packet time (Zeek's CaptureLoss::watch_interval).",
            transform: Arguments.positiveSeconds)
    var lossInterval: Double = 900

    @Flag(name: .customShort("C"), help: "Ignore checksums (Zeek's -C).")
    var ignoreChecksums = false

    @Option(help: "Zeek's likely_server_ports, which orient connections seen without their SYN: standard (Zeek's default scripts), none, or a list of services and ports (http,dns,8080/tcp).",
            transform: { text in
                do { return try LikelyServerPorts(parsing: text) } catch { throw ArgumentProblem("\(error)") }
            })
    var likelyServerPorts = LikelyServerPorts.standard

    @Option(help: "Seed for connection uids (default: from the clock, pid and ring).")
    var seed: UInt64?

    @Option(help: "Ask lb to shunt a TCP or UDP connection once it has carried BYTES of payload (k, M, G suffixes; 0: never). Its SYN, FIN and RST still arrive, and lb's final counts complete its conn.log record.",
            transform: Arguments.size)
    var shuntAfter: Int = 0

    @OptionGroup var attach: AttachOptions

    func run() throws {
        let name = ring
        if rotate > 0 && directory == nil { throw ValidationError("--rotate needs -d DIR") }
        AttachOptions.stopOnSignals()
        var consumer = try attach.attach(name, tool: "flowlog", shuntReports: shuntAfter > 0)
        var config = FlowConfig()
        config.ignoreChecksums = ignoreChecksums
        config.likelyServerPorts = likelyServerPorts
        config.shuntAfter = UInt64(shuntAfter)
        let uidSeed = seed ?? (Sys.wallNanos() ^ UInt64(UInt32(bitPattern: Sys.pid())) << 32 ^ UInt64(name.index) &* 0x9E37_79B9)
        var table = ConnTable(config: config, seed: uidSeed)
        let format: LogFormat = json ? .json : .tsv
        do {
            if let directory { try Sys.mkdirs(directory) }
            var conn = try ConnLog.writer(format: format, fd: 1, directory: directory, rotateSeconds: rotate)
            var lossFD: Int32 = -1
            if directory == nil, let lossLog {
                lossFD = try Sys.open(lossLog, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
            }
            defer { if lossFD >= 0 { Sys.close(lossFD) } }
            var loss: LogWriter? = nil
            if directory != nil || lossFD >= 0 {
                loss = try LogWriter(path: "capture_loss", format: format, fields: CaptureLoss.fields,
                                     types: CaptureLoss.types, fd: lossFD, directory: directory, rotateSeconds: rotate)
            }
            var estimator = CaptureLoss(intervalSeconds: lossInterval)
            let status = try consume(&consumer, &table, &conn, &loss, &estimator, peer: name.description)
            table.flushAll()
            for r in table.finished { try ConnLog.write(r, to: &conn) }
            table.finished.removeAll()
            let last = estimator.take(now: table.now, table.loss)
            if loss != nil { try CaptureLoss.write(last, peer: name.description, to: &loss!) }
            try conn.close(at: table.now)
            try loss?.close(at: table.now)
            consumer.report(processed: consumer.packets, lossGaps: table.loss.gaps, lossAcks: table.loss.acks)
            let s = table.stats
            try? printError("lb flowlog: \(name): \(s.packets) packets, \(s.connections) connections, \(table.loss.gaps) gaps of \(table.loss.acks) acks; not tracked: \(s.notIP) non-IP, \(s.fragments) fragments (\(s.reassembled) datagrams rebuilt, \(s.fragmentsDropped) dropped), \(s.otherProtocol) other protocols, \(s.truncated) truncated, \(s.badHeader) bad headers, \(s.badIPChecksum) bad IP checksums, \(s.tableFull) table full; \(s.shunted) connections shunted, \(s.shuntReports) end reports from lb (\(s.shuntReportsUnmatched) unmatched)")
            if status != 0 { throw ExitCode(status) }
        } catch let e as LogError {
            try? printError("lb flowlog: \(e)")
            throw ExitCode(1)
        } catch let e as SysError {
            try? printError("lb flowlog: \(e)")
            throw ExitCode(1)
        }
    }

    func consume(_ consumer: inout RingConsumer, _ table: inout ConnTable, _ conn: inout LogWriter,
                 _ loss: inout LogWriter?, _ estimator: inout CaptureLoss, peer: String) throws -> Int32 {
        var shunts: [(frame: [UInt8], vni: UInt32, vlan: UInt16?, idle: UInt64, slot: Int32)] = []
        while consumerStop.load(ordering: .relaxed) == 0 {
            let n = consumer.read(max: 256) { _, _, p in
                let d = p.descriptor
                if let r = ShuntEnd(flags: d.flags, bytes: p.bytes) {
                    table.applyShuntEnd(a: IPAddr(hi: r.aHi, lo: r.aLo), aPort: r.aPort, b: IPAddr(hi: r.bHi, lo: r.bLo), bPort: r.bPort,
                                        proto: r.proto, packetsAB: r.packetsAB, ipBytesAB: r.ipBytesAB, packetsBA: r.packetsBA,
                                        ipBytesBA: r.ipBytesBA, lastNanos: r.lastNanos)
                    return
                }
                var tunnel: UID? = nil
                if let t = p.tunnel { tunnel = Self.tunnelUID(t.pointee) }
                let vlan: UInt16? = d.flags & LB_F_VLAN != 0 ? d.vlan : nil
                let l3 = d.l3_off == 0xFFFF ? -1 : Int(d.l3_off)
                // a packet longer than the slot size: lb cut it, the capture had it whole
                let cut = d.flags & LB_F_TRUNCATED != 0
                table.process(p.bytes, l3: l3, wireLength: Int(d.wirelen), ts: d.ts_ns, tunnel: tunnel, vlan: vlan,
                              cutToSlot: cut)
                if table.shuntRequested {
                    table.shuntRequested = false
                    shunts.append((Array(p.bytes.prefix(256)), d.vni, vlan, table.shuntIdleNanos, table.shuntSlot))
                }
            }
            // Shunt requests go out once the batch is read (each is one exchange with lb).
            for s in shunts {
                let ask = ShuntAsk(idleSeconds: Double(s.idle) / 1e9)
                do { _ = try s.frame.withUnsafeBytes { b throws(AttachError) in try consumer.shunt(frame: b, vni: s.vni, vlan: s.vlan, ask) } }
                catch {
                    table.cancelShunt(slot: s.slot)
                    try? printError("lb flowlog: \(consumer.name): shunt refused: \(error)")
                }
            }
            shunts.removeAll(keepingCapacity: true)
            // Report, then release: lb prints its final stats as soon as the ring is drained,
            // so the report must be in place before the last packets are handed back.
            consumer.report(processed: consumer.packets, lossGaps: table.loss.gaps, lossAcks: table.loss.acks)
            consumer.release()
            if !table.finished.isEmpty {
                for r in table.finished { try ConnLog.write(r, to: &conn) }
                table.finished.removeAll(keepingCapacity: true)
            }
            if let m = estimator.tick(now: table.now, table.loss), loss != nil {
                try CaptureLoss.write(m, peer: peer, to: &loss!)
            }
            if n > 0 { continue }
            try conn.flush()
            try loss?.flush()
            switch consumer.wait(timeoutNanos: 100_000_000) {
            case .packets, .timeout: continue
            case .endOfStream: return 0
            case .producerGone:
                try? printError("lb flowlog: \(consumer.name): lb went away before the end of the stream")
                return 1
            }
        }
        return 0
    }

    static func tunnelUID(_ t: lb_tunnel_info) -> UID {
        func addr(_ b: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8), v4: Bool) -> IPAddr {
            withUnsafeBytes(of: b) { r in
                if v4 { return IPAddr(v4: UInt32(r[0]) << 24 | UInt32(r[1]) << 16 | UInt32(r[2]) << 8 | UInt32(r[3])) }
                var hi: UInt64 = 0, lo: UInt64 = 0
                for i in 0..<8 { hi = hi << 8 | UInt64(r[i]); lo = lo << 8 | UInt64(r[8 + i]) }
                return IPAddr(hi: hi, lo: lo)
            }
        }
        let v4 = t.family == 4
        // Zeek names a tunnel by its innermost encapsulation: UDP tunnels by their 5-tuple, GRE
        // (also GRE in UDP), ERSPAN and IP-in-IP by the address pair
        let e = UInt32(t.encap)
        let udpTunnel = e == LB_ENCAP_VXLAN || e == LB_ENCAP_GENEVE || e == LB_ENCAP_GTPU || e == LB_ENCAP_TEREDO
            || e == LB_ENCAP_AYIYA
        return UIDGenerator.tunnelUID(addr(t.src, v4: v4), udpTunnel ? t.sport : 0, addr(t.dst, v4: v4),
                                      udpTunnel ? t.dport : 0, proto: udpTunnel ? 17 : 47)
    }
}
