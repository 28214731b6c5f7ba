import Foundation
import LBCore
import LBGen
import Testing

/// lb gen's builders: the same seed gives the same trace, every checksum is right (checked by
/// LBGen's own sums and by tshark), fragments add up to their datagram.
@Suite struct GenTests {
    @Test func sameSeedSameTrace() {
        let a = TrafficSynth.generate(SynthConfig(seed: 7, flows: 50, packets: 500))
        let b = TrafficSynth.generate(SynthConfig(seed: 7, flows: 50, packets: 500))
        let c = TrafficSynth.generate(SynthConfig(seed: 8, flows: 50, packets: 500))
        #expect(a.count == 500)
        #expect(a.map(\.bytes) == b.map(\.bytes))
        #expect(a.map(\.bytes) != c.map(\.bytes))
    }

    @Test func headerAndTransportChecksums() {
        let frame = PacketBuilder.build(.ethernet(), .ipv4(src: "10.0.0.1", dst: "10.0.0.2"), .tcp(sport: 1234, dport: 80, flags: [.syn]),
                                        .payload(Array("hello".utf8)))
        let ip = Array(frame[14..<34])
        #expect(Checksum.verifies(ip), "IPv4 header checksum")
        let tcp = Array(frame[34...])
        let pseudo = Checksum.pseudoHeader(src: Array(ip[12..<16]), dst: Array(ip[16..<20]), proto: 6, length: tcp.count)
        #expect(Checksum.verifies(tcp, initial: pseudo), "TCP checksum over the pseudo-header")
    }

    @Test func ipv4FragmentsAddUp() {
        let datagram = Array(PacketBuilder.build(.ipv4(src: "10.0.0.1", dst: "10.0.0.2"), .udp(sport: 5, dport: 6),
                                                 .payload([UInt8](repeating: 0xAB, count: 3000))))
        let frags = Fragmenter.ipv4(datagram, size: 1000)
        #expect(frags.count >= 3)
        let payload = frags.reduce(0) { $0 + $1.count - 20 }
        #expect(payload == datagram.count - 20)
        for f in frags { #expect(Checksum.verifies(Array(f[0..<20]))) }
    }

    /// tshark, verifying every checksum it knows, finds none wrong in a synthetic trace.
    @Test func tsharkFindsNoBadChecksum() throws {
        let packets = TrafficSynth.generate(SynthConfig(seed: 3, flows: 100, packets: 2000))
        let dir = NSTemporaryDirectory() + "lbgen-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var file = [UInt8](repeating: 0, count: Pcap.fileHeaderSize)
        file.withUnsafeMutableBytes { Pcap.writeFileHeader(to: $0.baseAddress!, linkType: 1, snaplen: 65535, nanosecond: false) }
        for (i, p) in packets.enumerated() {
            var h = [UInt8](repeating: 0, count: Pcap.recordHeaderSize)
            h.withUnsafeMutableBytes {
                Pcap.writeRecordHeader(to: $0.baseAddress!, timestampNanos: UInt64(i) * 1000, caplen: UInt32(p.bytes.count),
                                       wirelen: UInt32(p.bytes.count), nanosecond: false)
            }
            file += h + p.bytes
        }
        let path = dir + "/synth.pcap"
        try Data(file).write(to: URL(fileURLWithPath: path))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/tshark")
        p.arguments = ["-r", path, "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                       "-T", "fields", "-e", "ip.checksum.status", "-e", "tcp.checksum.status", "-e", "udp.checksum.status"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == packets.count)
        let statuses = text.split(whereSeparator: { $0 == "\t" || $0 == "\n" || $0 == "," })
        #expect(statuses.contains("1"), "tshark verified some checksums")
        #expect(!statuses.contains("0"), "a bad checksum")
    }
}
