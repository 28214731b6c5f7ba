import ArgumentParser
import CLBRing
import CPcap
import Glibc
import LBCore
import LBRing
import LBSys
import LBWorker
import Synchronization

struct Tap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch a ring without consuming it (tcpdump-style lines, or pcap with -w).",
        discussion: """
            The ring's consumer is not disturbed: lb never waits for a tap. A tap that falls behind
            skips what lb has already reused and says how many packets it missed.
              lb tap zeek:3 'tcp port 443'
              lb tap zeek:3 -w - 'udp' | tshark -r -
            """)

    @Argument(help: "The ring, NAME:K.", transform: Arguments.ringName)
    var ring: RingName

    @Argument(parsing: .remaining, help: "A filter in tcpdump's language (libpcap), e.g. 'tcp port 443'.")
    var expression: [String] = []

    @Option(name: .customShort("c"), help: "Exit after COUNT packets.")
    var count: UInt64?

    @Option(name: .customShort("w"), help: "Write the packets as classic pcap to FILE ('-': standard output) instead of printing lines.")
    var write: String?

    @OptionGroup var attach: AttachOptions

    func run() throws {
        let name = ring
        let filter: PacketFilter?
        do { filter = try expression.isEmpty ? nil : PacketFilter(expression.joined(separator: " ")) } catch {
            throw ValidationError("\(error)")
        }
        AttachOptions.stopOnSignals()
        var tap = try attach.attach(name, tool: "tap", tap: true)
        try? printError("lb tap: tapping \(name)")
        var fd: Int32 = 1
        if let write, write != "-" {
            do { fd = try Sys.open(write, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644) } catch {
                try? printError("lb tap: -w \(write): \(error)")
                throw ExitCode(1)
            }
        }
        defer { if fd != 1 { Sys.close(fd) } }
        var pcap: PcapOutput? = write == nil ? nil : PcapOutput(fd: fd, nanosecond: false)
        var lines = LineOutput(fd: fd)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: max(tap.maxCaplen, 65536), alignment: 64)
        defer { scratch.deallocate() }
        var shown: UInt64 = 0, missed: UInt64 = 0, reportedMissed: UInt64 = 0
        var status: Int32 = 0
        do {
            try pcap?.header(snaplen: UInt32(tap.maxCaplen))
            try pcap?.flush()
            loop: while consumerStop.load(ordering: .relaxed) == 0 {
                var failure: SysError? = nil
                let n = tap.tapPoll(max: 256, scratch: scratch, missed: &missed) { d, bytes in
                    guard failure == nil, count.map({ shown < $0 }) ?? true else { return }
                    if let filter, !filter.matches(bytes, wireLength: Int(d.wirelen), ts: d.ts_ns) { return }
                    shown += 1
                    do throws(SysError) {
                        if pcap != nil {
                            try pcap!.append(bytes: bytes, timestampNanos: d.ts_ns, wireLength: Int(d.wirelen))
                        } else {
                            try lines.append(PacketLine.render(d, bytes))
                        }
                    } catch { failure = error }
                }
                if let failure { throw failure }
                if let count, shown >= count { break }
                if missed != reportedMissed {
                    try? printError("lb tap: \(name): fell behind, \(missed) packets missed so far")
                    reportedMissed = missed
                }
                if n > 0 { continue }
                try pcap?.flush()
                try lines.flush()
                switch tap.wait(timeoutNanos: 100_000_000) {
                case .packets, .timeout: continue
                case .endOfStream:
                    // drain what is left, then stop
                    if tap.backlog().allSatisfy({ $0 == 0 }) { break loop }
                case .producerGone:
                    try? printError("lb tap: \(name): lb went away")
                    status = 1
                    break loop
                }
            }
            try pcap?.flush()
            try lines.flush()
        } catch let e as SysError {
            if e.code != EPIPE {
                try? printError("lb tap: \(e)")
                throw ExitCode(1)
            }
        }
        try? printError("lb tap: \(name): \(shown) packets shown, \(missed) missed")
        if status != 0 { throw ExitCode(status) }
    }
}

/// A tcpdump filter compiled by libpcap for Ethernet frames.
final class PacketFilter {
    var program = bpf_program()
    let handle: OpaquePointer

    init(_ expression: String) throws {
        guard let h = pcap_open_dead(DLT_EN10MB, 262144) else { throw TapError("libpcap: pcap_open_dead failed") }
        handle = h
        guard pcap_compile(h, &program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            let why = String(cString: pcap_geterr(h))
            throw TapError("filter '\(expression)': \(why)")
        }
    }

    deinit {
        pcap_freecode(&program)             // frees nothing when compiling failed
        pcap_close(handle)
    }

    func matches(_ bytes: UnsafeRawBufferPointer, wireLength: Int, ts: UInt64) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        var h = pcap_pkthdr()
        h.ts = timeval(tv_sec: Int(ts / 1_000_000_000), tv_usec: Int(ts % 1_000_000_000 / 1000))
        h.caplen = UInt32(bytes.count)
        h.len = UInt32(max(wireLength, bytes.count))
        return pcap_offline_filter(&program, &h, base.assumingMemoryBound(to: UInt8.self)) != 0
    }
}

struct TapError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Buffered text lines.
struct LineOutput {
    let fd: Int32
    var pending = ""
    init(fd: Int32) { self.fd = fd }
    mutating func append(_ line: String) throws(SysError) {
        pending += line
        pending += "\n"
        if pending.utf8.count > 65536 { try flush() }
    }
    mutating func flush() throws(SysError) {
        guard !pending.isEmpty else { return }
        try Sys.write(fd, pending)
        pending = ""
    }
}

/// One tcpdump-like line: time, addresses, ports, protocol, TCP flags, length.
enum PacketLine {
    static func render(_ d: lb_desc, _ b: UnsafeRawBufferPointer) -> String {
        let t = d.ts_ns
        let secs = Int(t / 1_000_000_000)
        var tm = tm()
        var tt = time_t(secs)
        gmtime_r(&tt, &tm)
        let usec = Int(t % 1_000_000_000 / 1000)
        let time = "\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(pad(usec, 6))"
        return time + " " + describe(b, wire: Int(d.wirelen))
    }

    /// The packet as a ring carries it, read by LBCore's decoder without removing tunnels (a
    /// ring in --decap keep mode shows the outer packet, as tcpdump would).
    static let decoder = Decoder(DecodeConfig(tunnelPorts: [], maxDepth: 0))

    static func describe(_ b: UnsafeRawBufferPointer, wire: Int) -> String {
        var d = Decoded()
        withUnsafeMutablePointer(to: &d) { decoder.decode(b, link: .ethernet, into: $0) }
        let vlan = d.hasVLAN ? "vlan \(d.vlan), " : ""
        guard d.l3 >= 0, d.key.kind == .ports || d.key.kind == .addresses else {
            return vlan + (d.error != .none ? "\(d.error.name), length \(wire)" : "non-IP, length \(wire)")
        }
        let k = d.key
        let v4 = b[d.l3] >> 4 == 4
        let family = v4 ? "IP" : "IP6"
        let src = address(k.srcHi, k.srcLo, v4: v4), dst = address(k.dstHi, k.dstLo, v4: v4)
        let l4 = d.l4
        // as tcpdump: an IPv6 fragment shows its addresses only (its ports come after "frag")
        if d.isFragment && !v4 { return "\(vlan)IP6 \(src) > \(dst): frag, proto \(k.proto), length \(wire)" }
        switch k.proto {
        case 6 where l4 >= 0 && b.count >= l4 + 14:
            let flags = b[l4 + 13]
            var f = ""
            for (bit, c) in [(0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"), (0x10, "."), (0x20, "U")] where Int(flags) & bit != 0 { f += c }
            return "\(vlan)\(family) \(src).\(k.sport) > \(dst).\(k.dport): tcp Flags [\(f.isEmpty ? "none" : f)], length \(wire)"
        case 17 where k.kind == .ports:
            return "\(vlan)\(family) \(src).\(k.sport) > \(dst).\(k.dport): udp, length \(wire)"
        case 132 where k.kind == .ports:
            return "\(vlan)\(family) \(src).\(k.sport) > \(dst).\(k.dport): sctp, length \(wire)"
        case 1 where l4 >= 0 && b.count >= l4 + 2, 58 where l4 >= 0 && b.count >= l4 + 2:
            return "\(vlan)\(family) \(src) > \(dst): \(k.proto == 1 ? "icmp" : "icmp6") type \(b[l4]) code \(b[l4 + 1]), length \(wire)"
        default:
            return "\(vlan)\(family) \(src) > \(dst): proto \(k.proto)\(d.isFragment ? " (fragment)" : ""), length \(wire)"
        }
    }

    /// An address of a flow key (IPv4 is stored IPv4-mapped).
    static func address(_ hi: UInt64, _ lo: UInt64, v4: Bool) -> String {
        if v4 {
            let a = UInt32(truncatingIfNeeded: lo)
            return "\(a >> 24).\(a >> 16 & 0xFF).\(a >> 8 & 0xFF).\(a & 0xFF)"
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: hi >> (56 - 8 * i)); bytes[8 + i] = UInt8(truncatingIfNeeded: lo >> (56 - 8 * i)) }
        return bytes.withUnsafeBytes { ipv6($0, 0) }
    }

    static func ipv6(_ b: UnsafeRawBufferPointer, _ o: Int) -> String {
        var a = in6_addr()
        withUnsafeMutableBytes(of: &a) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[o..<o + 16])) }
        var buf = [CChar](repeating: 0, count: 64)
        inet_ntop(AF_INET6, &a, &buf, 64)
        return String(cString: buf)
    }

    static func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    static func pad(_ v: Int, _ n: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, n - s.count)) + s
    }
}
