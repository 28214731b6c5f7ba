import ArgumentParser
import Glibc
import LBCore
import LBGen
import LBSys

extension LinkFraming: ExpressibleByArgument {}
extension EthernetEncap: ExpressibleByArgument {}

struct Gen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make traffic: a synthetic trace (TCP sessions, DNS-like UDP, ICMP, IPv6, fragments, VXLAN and GENEVE mirroring) written to a pcap file or sent on an interface, or a capture replayed onto an interface.",
        discussion: """
            Examples: `lb gen -w mix.pcap --packets 100000` writes a synthetic trace; \
            `lb gen -i veth0 --rate 200000 --duration 10` sends the mix at 200 kpps for 10 s; \
            `lb gen -i veth0 --replay big.pcap --count 1000000` replays a capture as fast as possible.

            Sending uses an AF_PACKET socket with PACKET_QDISC_BYPASS and sendmmsg(2) batches; the \
            frames are built (or read) into memory first. With --rate the sender is paced by a \
            token bucket on CLOCK_MONOTONIC (bursts of at most --batch frames). Without --count, \
            --duration or --loop, each frame of the trace is sent once. When it ends (or on \
            SIGINT/SIGTERM) it prints one JSON line on stdout: packets_sent, bytes_sent, seconds, \
            rate_pps, rate_mbps, busy_retries, rate_lagged, frames_skipped.

            Other link layers (the synthetic trace's IP packets, the same flows): --link ppp \
            (LINKTYPE_PPP: FF 03 and the PPP protocol), ppp-hdlc (LINKTYPE_PPP_HDLC, the same \
            bytes), nflog (LINKTYPE_NFLOG: header, packet-header and prefix TLVs, the payload \
            TLV) or fddi (LINKTYPE_FDDI: frame control, addresses, LLC/SNAP) writes a pcap of \
            that link type (with -w only). --encap wraps every Ethernet frame: pbb (802.1ah: \
            backbone addresses, backbone VLAN 100 on 0x88A8, an I-TAG whose I-SID is 65536 + the \
            flow's index modulo 65536, then the frame), fabricpath (the 16-byte Cisco FabricPath header, \
            then the frame) or llc-snap (802.3 with LLC/SNAP instead of Ethernet II; frames \
            whose data would pass 802.3's 1500 bytes stay Ethernet II); it works with -w and -i.
            """)

    @Option(name: .customShort("w"), help: "The pcap file to write.")
    var write: String?

    @Option(name: [.customShort("i"), .customLong("interface")], help: "Send on this interface instead of writing a file.")
    var interface: String?

    @Option(help: "Send the frames of this capture (pcap or pcapng, Ethernet) instead of a synthetic trace.")
    var replay: String?

    @Option(help: "mix (every kind of flow), udp64 (minimum-size UDP frames), vxlan (the mix inside VXLAN), or elephants (TCP, 2% of the flows carrying 90% of the packets).")
    var mode: GenMode = .mix

    @Option(help: "Write the trace on this link layer instead of Ethernet: \(LinkFraming.allCases.map(\.rawValue).joined(separator: ", ")) (with -w).")
    var link: LinkFraming?

    @Option(help: "Wrap every Ethernet frame: \(EthernetEncap.allCases.map(\.rawValue).joined(separator: ", ")).")
    var encap: EthernetEncap?

    @Option(help: "Number of flows.", transform: Arguments.integer(in: 1...Int(Int32.max)))
    var flows: Int = 1000

    @Option(help: "Number of packets in the synthetic trace (exactly, 1 to 50000000).", transform: Arguments.integer(in: 1...50_000_000))
    var packets: Int = 100_000

    @Option(help: "Seed; the same seed and options give the same trace.")
    var seed: UInt64 = 1

    @Option(help: "Frame sizes: imix (60/590/1514 in 7:4:1), a size (e.g. 1000), or a range (e.g. 64-1500).",
            transform: Gen.sizeDistribution)
    var sizes: SynthConfig.SizeDistribution = .imix

    @Flag(help: "Nanosecond timestamps (with -w).")
    var nano = false

    @Option(help: "Packets per second when sending (at most 100000000); 0 sends as fast as possible.",
            transform: { UInt64(try Arguments.integer(in: 0...100_000_000)($0)) })
    var rate: UInt64 = 0

    @Option(help: "Send this many frames in all, going round the trace as often as needed.",
            transform: { UInt64(try Arguments.integer(in: 1...Int.max)($0)) })
    var count: UInt64?

    @Option(help: "Stop sending after this many seconds.", transform: Arguments.positiveSeconds)
    var duration: Double?

    @Flag(help: "Go round the trace until --count, --duration or a signal (implied by --duration).")
    var loop = false

    @Option(help: "Frames per sendmmsg call, 1 to \(PacketSender.maxBatch); the largest burst when pacing.",
            transform: Arguments.integer(in: 1...PacketSender.maxBatch))
    var batch: Int = 64

    @Flag(help: "Send through the qdisc layer (no PACKET_QDISC_BYPASS).")
    var noQdiscBypass = false

    @Option(help: "Pin the sender to this CPU.")
    var cpu: Int?

    func validate() throws {
        switch (write, interface) {
        case (nil, nil): throw ValidationError("give -w FILE to write a trace or -i IFACE to send one")
        case (.some, .some): throw ValidationError("-w and -i go separately: write a file or send on an interface")
        default: break
        }
        if link != nil {
            guard write != nil else { throw ValidationError("--link writes a capture file of that link type: use it with -w FILE") }
            guard encap == nil else { throw ValidationError("--link and --encap go separately: --encap wraps Ethernet frames") }
        }
        if encap != nil && replay != nil { throw ValidationError("--encap wraps the synthetic trace, not a --replay capture") }
        if write != nil {
            guard replay == nil else { throw ValidationError("--replay sends a capture: use it with -i IFACE") }
            guard rate == 0, count == nil, duration == nil, !loop else {
                throw ValidationError("--rate, --count, --duration and --loop are for sending (-i IFACE)")
            }
        }
    }

    /// `--sizes`: imix, a frame size, or a range LOW-HIGH.
    static func sizeDistribution(_ text: String) throws -> SynthConfig.SizeDistribution {
        if text == "imix" { return .imix }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
        if parts.count == 1, let n = parts[0], n >= 60, n <= 9018 { return .fixed(n) }
        if parts.count == 2, let a = parts[0], let b = parts[1], a >= 60, b <= 9018, a <= b { return .uniform(a...b) }
        throw ArgumentProblem("use imix, a frame size from 60 to 9018, or a range such as 64-1500")
    }

    enum GenMode: String, ExpressibleByArgument, CaseIterable { case mix, udp64, vxlan, elephants }

    func synthesize() throws -> [SynthPacket] {
        var config = SynthConfig(seed: seed, flows: flows, packets: packets,
                                 mode: mode == .udp64 ? .udp64 : mode == .vxlan ? .vxlanOnly : mode == .elephants ? .elephants : .mixed)
        config.sizes = sizes
        var trace = TrafficSynth.generate(config)
        if let encap {
            for i in trace.indices { trace[i].bytes = encap.frame(trace[i].bytes, isid: 0x10000 + UInt32(trace[i].flowIndex % 0x10000)) }
        }
        if let link {
            for i in trace.indices {
                guard let f = link.frame(fromEthernet: trace[i].bytes) else { preconditionFailure("TrafficSynth made a frame that is not IP") }
                trace[i].bytes = f
            }
        }
        return trace
    }

    func run() throws {
        if let interface { return try send(on: interface) }
        guard let write else { throw ExitCode(2) }
        let trace = try synthesize()
        do {
            let fd = try Sys.open(write, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
            defer { Sys.close(fd) }
            var out = PcapOutput(fd: fd, nanosecond: nano)
            try out.header(snaplen: 65535, linkType: link?.linkType ?? 1)
            for p in trace { try out.append(array: p.bytes, timestampNanos: p.timestampNanos) }
            try out.flush()
            try? printError("lb gen: \(write): \(trace.count) packets, \(Set(trace.map(\.flowIndex)).count) flows")
        } catch {
            try? printError("lb gen: -w \(write): \(error)")
            throw ExitCode(1)
        }
    }

    func send(on name: String) throws {
        func fail(_ message: String) -> ExitCode {
            try? printError("lb gen: \(message)")
            return ExitCode(1)
        }
        let info: InterfaceInfo
        do { info = try Sys.interface(name) } catch { throw fail("-i \(name): \(error)") }
        guard info.isEthernet else { throw fail("-i \(name): not an Ethernet interface (ARPHRD \(info.hardwareType)); lb gen sends Ethernet frames") }

        var source: [[UInt8]]
        var skipped: [String: Int] = [:]
        if let replay {
            do { (source, skipped) = try FramePool.readCapture(replay) } catch { throw fail("--replay \(replay): \(error)") }
        } else {
            source = try synthesize().map(\.bytes)
        }
        let (kept, tooLong) = FramePool.filter(source, mtu: info.mtu)
        source = []
        skipped.merge(tooLong) { $0 + $1 }
        for (why, n) in skipped.sorted(by: { $0.key < $1.key }) { try? printError("lb gen: skipped \(n) frames: \(why)") }
        guard !kept.isEmpty else { throw fail("no frame to send") }
        var pool = FramePool(frames: kept)
        pool.skipped = skipped

        var loopConfig = SendLoop()
        loopConfig.rate = rate
        loopConfig.batch = batch
        loopConfig.durationNanos = duration.map { UInt64($0 * 1e9) }
        loopConfig.count = count ?? ((loop || duration != nil) ? nil : UInt64(pool.count))

        let sender: PacketSender
        do { sender = try PacketSender(interfaceIndex: info.index, qdiscBypass: !noQdiscBypass, sendBuffer: 4 << 20) }
        catch { throw fail("-i \(name): \(error)") }
        if let cpu { do { try Threads.pin(cpu: cpu) } catch { throw fail("--cpu \(cpu): \(error)") } }
        Sys.setTimerSlack(nanos: 1_000)
        do { try Sys.installStopHandlers() } catch { throw fail("\(error)") }

        let report: SendReport
        do { report = try loopConfig.run(pool, on: sender) } catch { throw fail("-i \(name): \(error)") }
        let skippedTotal = skipped.values.reduce(0, +)
        let json = "{\"interface\":\"\(name)\",\"packets_sent\":\(report.packets),\"bytes_sent\":\(report.bytes),"
            + "\"seconds\":\(fmt(report.seconds, 6)),\"rate_pps\":\(fmt(report.pps, 0)),\"rate_mbps\":\(fmt(report.mbps, 1)),"
            + "\"target_pps\":\(rate),\"busy_retries\":\(report.busy),\"rate_lagged\":\(report.lagged),"
            + "\"frames_in_pool\":\(pool.count),\"frames_skipped\":\(skippedTotal)}"
        try Sys.write(1, json + "\n")
        try? printError("lb gen: \(name): sent \(report.packets) packets, \(report.bytes) bytes in \(fmt(report.seconds, 3)) s "
            + "(\(fmt(report.pps / 1000, 1)) kpps, \(fmt(report.mbps, 1)) Mbit/s)"
            + (report.lagged > 0 ? "; fell behind --rate \(report.lagged) times" : ""))
    }

    private func fmt(_ v: Double, _ places: Int) -> String {
        guard v.isFinite else { return "0" }
        if places == 0 { return String(Int64(v.rounded())) }
        var s = String(Int64((v * pow(10, Double(places))).rounded()))
        let neg = s.hasPrefix("-")
        if neg { s.removeFirst() }
        while s.count <= places { s = "0" + s }
        s.insert(".", at: s.index(s.endIndex, offsetBy: -places))
        return (neg ? "-" : "") + s
    }
}
