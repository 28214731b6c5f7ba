import Foundation
import Glibc
@testable import LBBroker
import LBCore
import LBTestSupport
import Testing

/// The replay reads capture files through a sliding window (pread, never mmap), so a file that
/// changes under it ends the replay like a damaged record instead of SIGBUS.
@Suite("Capture files read through a window")
struct CaptureFileTests {
    struct Packet: Equatable {
        var bytes: [UInt8]
        var ts: UInt64
        var link: UInt32
        var wire: Int
    }

    /// Every packet of a reader over the whole file in memory (the reference), and why it stopped.
    func whole(_ path: String) throws -> (packets: [Packet], stop: String?, position: Int) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try data.withUnsafeBytes { raw in
            var r = try CaptureReader(raw)
            var out: [Packet] = []
            while let p = r.next() { out.append(Packet(bytes: Array(p.data), ts: p.timestampNanos, link: p.linkType, wire: p.wireLength)) }
            return (out, r.stoppedEarly, r.position)
        }
    }

    /// Every packet through a CaptureFile with the given window, sliding only between packets
    /// as the replay does (one packet per "batch" here, the most slides).
    struct Outcome {
        var finished: Bool
        var position: Int
        var stoppedEarly: String?
        var unreadBytes: Int
        var size: Int
    }

    func windowed(_ path: String, window: Int, after: ((Int) -> Void)? = nil) throws -> (packets: [Packet], file: Outcome) {
        var f = try CaptureFile(path: path, window: window)
        var out: [Packet] = []
        while true {
            guard let p = f.next(canSlide: true) else { break }
            out.append(Packet(bytes: Array(p.data), ts: p.timestampNanos, link: p.linkType, wire: p.wireLength))
            after?(out.count)
        }
        return (out, Outcome(finished: f.finished, position: f.reader.position, stoppedEarly: f.stoppedEarly,
                             unreadBytes: f.unreadBytes, size: f.size))
    }

    @Test("every corpus trace reads the same through windows of any size as from memory")
    func corpusThroughSmallWindows() throws {
        let traces = Corpus.traces()
        try #require(!traces.isEmpty, "no corpus traces under \(Corpus.root)")
        var slid = 0
        for path in traces {
            let ref = try whole(path)
            for window in [64, 1500, 70_000, CaptureFile.windowSize] {
                let (got, file) = try windowed(path, window: window)
                #expect(got == ref.packets, "\(path) window \(window): \(got.count) packets, want \(ref.packets.count)")
                #expect(file.finished && file.position == ref.position)
                #expect((file.stoppedEarly == nil) == (ref.stop == nil), "\(path): \(file.stoppedEarly ?? "-") vs \(ref.stop ?? "-")")
                if window == 64 && file.size > 64 { slid += 1 }
            }
        }
        #expect(slid > 10)
    }

    @Test("a damaged record stops the windowed read where it stops the reader, with the same unread bytes")
    func damagedFileStopsAlike() throws {
        let scratch = try Scratch("capfile-damaged")
        let traces = Corpus.traces().filter { $0.hasSuffix("wikipedia.pcap") || $0.hasSuffix(".pcapng") }.prefix(3)
        try #require(!traces.isEmpty)
        for path in traces {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            for cut in [bytes.count / 3, bytes.count / 2 + 7, bytes.count - 5] {
                let damaged = scratch.path + "/cut.pcap"
                try bytes.prefix(cut).write(to: URL(fileURLWithPath: damaged))
                let ref = try whole(damaged)
                let (got, file) = try windowed(damaged, window: 1000)
                #expect(got == ref.packets && file.position == ref.position, "\(path) cut at \(cut)")
                #expect(file.stoppedEarly != nil && ref.stop != nil)
                #expect(file.unreadBytes == cut - ref.position)
            }
        }
    }

    /// A capture of `count` 600-byte packets.
    func trace(_ path: String, count: Int) throws {
        var out = Data([0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 1, 0, 0, 0])
        for i in 0..<count {
            var rec = [UInt8](repeating: 0, count: 16 + 600)
            rec[0] = UInt8(i & 0xFF); rec[1] = UInt8(i >> 8 & 0xFF)
            rec[8] = 0x58; rec[9] = 0x02; rec[12] = 0x58; rec[13] = 0x02     // 600 captured, 600 on the wire
            rec[16 + 12] = 0x08                                               // EtherType IPv4
            out.append(contentsOf: rec)
        }
        try out.write(to: URL(fileURLWithPath: path))
    }

    @Test("a file truncated while it is read ends the read, counted, without a signal")
    func truncatedWhileRead() throws {
        let scratch = try Scratch("capfile-shrink")
        let path = scratch.path + "/t.pcap"
        try trace(path, count: 1000)
        let size = 24 + 1000 * 616
        let (got, file) = try windowed(path, window: 64 << 10) { n in
            if n == 10 { truncate(path, off_t(size / 2)) }
        }
        // what the first window held is delivered, then the read stops at the change
        #expect(got.count >= 10 && got.count < 1000)
        #expect(file.finished)
        let why = try #require(file.stoppedEarly)
        #expect(why.contains("changed from \(size) to \(size / 2)") || why.contains("shrank"), "\(why)")
        #expect(file.unreadBytes == size - file.position)
    }

    @Test("a file that grows or is replaced while it is read says so at its end")
    func grownOrReplaced() throws {
        let scratch = try Scratch("capfile-grow")
        let path = scratch.path + "/t.pcap"
        try trace(path, count: 100)
        let size = 24 + 100 * 616
        let grown = try windowed(path, window: CaptureFile.windowSize) { n in
            if n == 50, let h = FileHandle(forWritingAtPath: path) { h.seekToEndOfFile(); h.write(Data(count: 616)); h.closeFile() }
        }
        #expect(grown.packets.count == 100)
        #expect(grown.file.stoppedEarly?.contains("changed from \(size) to \(size + 616)") == true, "\(grown.file.stoppedEarly ?? "-")")
        #expect(grown.file.unreadBytes == 616)

        try trace(path, count: 100)
        let other = scratch.path + "/other.pcap"
        try trace(other, count: 100)
        let replaced = try windowed(path, window: CaptureFile.windowSize) { n in
            if n == 50 { rename(other, path) }
        }
        #expect(replaced.packets.count == 100)
        #expect(replaced.file.stoppedEarly?.contains("was replaced") == true, "\(replaced.file.stoppedEarly ?? "-")")

        // unchanged: no remark
        let clean = try windowed(path, window: 4096)
        #expect(clean.packets.count == 100 && clean.file.stoppedEarly == nil && clean.file.unreadBytes == 0)
    }
}
