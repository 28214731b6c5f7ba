import ArgumentParser
import CLBRing
import Glibc
import LBBroker
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
        var line = PacketLine()
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
                    if let filter, let base = bytes.baseAddress, !filter.matches(base, caplen: bytes.count, wire: Int(d.wirelen)) { return }
                    shown += 1
                    do throws(SysError) {
                        if pcap != nil {
                            try pcap!.append(bytes: bytes, timestampNanos: d.ts_ns, wireLength: Int(d.wirelen))
                        } else {
                            try lines.append(line.render(d, bytes))
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
