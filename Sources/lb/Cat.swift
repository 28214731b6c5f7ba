import ArgumentParser
import Glibc
import LBCore
import LBRing
import LBSys
import LBWorker
import Synchronization

struct Cat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume a ring and write its packets as classic pcap (for tcpdump, tshark, zeek -r -).")

    @Argument(help: "The ring, NAME:K.", transform: Arguments.ringName)
    var ring: RingName

    @Option(name: .customShort("w"), help: "Write to FILE ('-': standard output, the default).")
    var write: String = "-"

    @Flag(help: "Nanosecond timestamps (pcap magic a1b23c4d) instead of microseconds.")
    var nano = false

    @Option(name: .customShort("c"), help: "Exit after COUNT packets.")
    var count: UInt64?

    @OptionGroup var attach: AttachOptions

    func run() throws {
        let name = ring
        AttachOptions.stopOnSignals()
        var consumer = try attach.attach(name, tool: "cat")
        let fd: Int32
        if write == "-" {
            fd = 1
        } else {
            do { fd = try Sys.open(write, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644) } catch {
                try? printError("lb cat: -w \(write): \(error)")
                throw ExitCode(1)
            }
        }
        var out = PcapVectors(fd: fd, nanosecond: nano)
        defer { if fd != 1 { Sys.close(fd) } }
        do {
            try out.header(snaplen: UInt32(consumer.maxCaplen))
            let status = try copy(&consumer, into: &out)
            try? printError("lb cat: \(name): \(out.packets) packets")
            if status != 0 { throw ExitCode(status) }
        } catch let e as SysError {
            if e.code == EPIPE { return }            // the reader went away: not an error
            try? printError("lb cat: \(e)")
            throw ExitCode(1)
        }
    }

    /// Copies packets until end of stream, --count, a signal, or lb going away (status 1).
    /// Each batch is written from the ring (writev) and only then released to lb.
    func copy(_ consumer: inout RingConsumer, into out: inout PcapVectors) throws -> Int32 {
        while consumerStop.load(ordering: .relaxed) == 0 {
            let limit = count.map { Int(min($0 - out.packets, UInt64(PcapVectors.capacity))) } ?? PcapVectors.capacity
            let n = consumer.read(max: limit) { _, _, p in out.add(p) }
            if n > 0 {
                try out.flush()
                consumer.report(processed: out.packets)
                consumer.release()
                if let count, out.packets >= count { return 0 }
                continue
            }
            switch consumer.wait(timeoutNanos: 100_000_000) {
            case .packets, .timeout: continue
            case .endOfStream: return 0
            case .producerGone:
                try? printError("lb cat: \(consumer.name): lb went away before the end of the stream")
                return 1
            }
        }
        return 0
    }
}
