import Foundation
import LBGen
import Testing

/// `lb flowlog --shunt-after BYTES`: a connection past BYTES of payload is shunted by lb (only
/// its SYN, FIN and RST still arrive) and lb's end report completes its record, so conn.log
/// equals the unshunted run's on the id fields, proto, duration, sizes, state, the packet and
/// IP-byte counters, and missed_bytes — while the workers receive far fewer packets.
@Suite struct ShuntAfterTests {
    static let fields = ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "duration", "orig_bytes", "resp_bytes",
                         "conn_state", "missed_bytes", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes"]

    /// Two elephants (a download and an upload) among small UDP exchanges.
    static func elephants() -> [(timestampNanos: UInt64, bytes: [UInt8])] {
        var frames = GapTests.transfer(segments: 2000, size: 1400, isn: 7)
        let up = GapTests.transfer(segments: 1500, size: 1000, isn: 4_294_000_000, carrier: .vxlan, cport: 41000)
        frames += up.map { ($0.timestampNanos + 50_000_000, $0.bytes) }
        var t = frames[0].timestampNanos
        for i in 0..<40 {
            t += 7_000_000
            frames.append((t, PacketBuilder.build(.ethernet(), .ipv4(src: IPv4(0x0A05_0001 + UInt32(i % 7)), dst: "10.6.0.1"), .udp(sport: 20000 + UInt16(i), dport: 9999), .filler(80))))
        }
        return frames.sorted { $0.timestampNanos < $1.timestampNanos }
    }

    @Test func elephantsShuntedLogAsUnshunted() throws {
        let frames = Self.elephants()
        let plain = try ThroughLB.run(frames, workers: 2, tag: "shunt-off")
        // small rings: the replay waits for the workers, so it is at most 64 packets ahead of the
        // worker that asks for the shunt (a live input is not ahead at all)
        let shunted = try ThroughLB.run(frames, workers: 2, flowlogArgs: ["--shunt-after", "100k"], lbArgs: ["--ring-slots", "64"],
                                        tag: "shunt-on")
        #expect(shunted.rows(Self.fields) == plain.rows(Self.fields), "\n\(shunted.rows(Self.fields).joined(separator: "\n"))\nvs\n\(plain.rows(Self.fields).joined(separator: "\n"))")
        #expect(plain.rows(["missed_bytes"]).allSatisfy { $0 == "0" })
        // the workers got the first 100 kB of each elephant, its FIN/RST, and the small flows
        let forwarded = shunted.stat("packets_forwarded"), total = plain.stat("packets_forwarded")
        #expect(forwarded > 0 && forwarded * 5 < total, "forwarded \(forwarded) of \(total)")
    }

    @Test func aCorpusTraceShuntedLogsAsUnshunted() throws {
        let trace = Corpus.root + "/traces/http/no_crlf.pcap"
        let scratchA = try ScratchDirectory("shunt-corpus-off"), scratchB = try ScratchDirectory("shunt-corpus-on")
        let plain = try ThroughLB.run(trace: trace, workers: 2, in: scratchA)
        let shunted = try ThroughLB.run(trace: trace, workers: 2, flowlogArgs: ["--shunt-after", "4k"], lbArgs: ["--ring-slots", "64"],
                                        in: scratchB)
        #expect(shunted.rows(Self.fields) == plain.rows(Self.fields), "\n\(shunted.rows(Self.fields).joined(separator: "\n"))\nvs\n\(plain.rows(Self.fields).joined(separator: "\n"))")
        #expect(shunted.stat("packets_forwarded") < plain.stat("packets_forwarded"))
    }
}
