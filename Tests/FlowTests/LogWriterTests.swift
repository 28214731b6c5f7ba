import Foundation
import LBFlow
import Testing

/// conn.log and capture_loss.log as files: Zeek's TSV header, JSON lines, rotation.
@Suite("Log writers")
struct LogWriterTests {
    func records() -> [ConnRecord] {
        var c = Conversation()
        c.handshake()
        c.dataFromClient(10)
        c.close()
        var d = Conversation(cport: 40001, sport: 53)
        d.udp(fromClient: false, payload: 20)
        d.ts = c.ts &+ 5_000_000_000
        var frames = c.frames
        for f in d.frames { frames.append((c.ts &+ 5_000_000_000, f.bytes)) }
        return track(frames).records.sorted { $0.ts < $1.ts }
    }

    @Test("TSV: Zeek's header lines, one line per record, unset fields as '-'")
    func tsv() throws {
        let dir = try ScratchDirectory("flowlog-tsv")
        var w = try ConnLog.writer(format: .tsv, directory: dir.path)
        let recs = records()
        for r in recs { try ConnLog.write(r, to: &w) }
        try w.close(at: recs.last!.ts)
        let text = try String(contentsOfFile: dir.path + "/conn.log", encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines[0] == "#separator \\x09")
        #expect(lines.contains("#path\tconn"))
        #expect(lines.contains("#fields\t" + ConnLog.fields.joined(separator: "\t")))
        #expect(lines.contains("#types\t" + ConnLog.types.joined(separator: "\t")))
        #expect(lines.last!.hasPrefix("#close\t"))
        let log = ZeekLog(text: text)
        #expect(log.records.count == 2)
        #expect(log.records[0]["conn_state"] == "SF" && log.records[0]["history"] == "ShADFaf")
        #expect(log.records[1]["history"] == "^d" && log.records[1]["duration"] == "-" && log.records[1]["service"] == "-")
        #expect(log.records[1]["tunnel_parents"] == "-" && log.records[1]["local_orig"] == "-")
    }

    @Test("JSON lines: one object per record, unset fields left out")
    func json() throws {
        let dir = try ScratchDirectory("flowlog-json")
        var w = try ConnLog.writer(format: .json, directory: dir.path)
        for r in records() { try ConnLog.write(r, to: &w) }
        try w.close(at: 0)
        let text = try String(contentsOfFile: dir.path + "/conn.log", encoding: .utf8)
        let objs = try text.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(objs.count == 2)
        #expect(objs[0]["proto"] as? String == "tcp" && objs[0]["id.resp_p"] as? Int == 8080)
        #expect(objs[0]["orig_bytes"] as? Int == 10)
        #expect(objs[1]["duration"] == nil && objs[1]["service"] == nil)
        #expect(objs[1]["history"] as? String == "^d")
    }

    @Test("rotation: files are closed and renamed by packet time")
    func rotation() throws {
        let dir = try ScratchDirectory("flowlog-rotate")
        var w = try LogWriter(path: "capture_loss", format: .tsv, fields: CaptureLoss.fields, types: CaptureLoss.types,
                              directory: dir.path, rotateSeconds: 60)
        var loss = CaptureLoss(intervalSeconds: 30)
        var total = LossCounters()
        let t0: UInt64 = 1_700_000_000_000_000_000
        var written = 0
        for s in stride(from: 0, through: 300, by: 1) {
            total.acks += 10
            if s % 5 == 0 { total.gaps += 1 }
            if let m = loss.tick(now: t0 + UInt64(s) * 1_000_000_000, total) {
                try CaptureLoss.write(m, peer: "w:0", to: &w)
                written += 1
                // the first interval also holds the counts of the first call (10 acks, 1 gap)
                if written == 1 { #expect(m.acks == 310 && m.gaps == 7) }
                else { #expect(m.acks == 300 && m.gaps == 6 && abs(m.percentLost - 2) < 1e-9) }
            }
        }
        try w.close(at: t0 + 300_000_000_000)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        let rotated = files.filter { $0.hasPrefix("capture_loss.") && $0 != "capture_loss.log" }
        #expect(written == 10)
        #expect(rotated.count >= 4, "rotated files: \(files)")
        var all = 0
        for f in files { all += ZeekLog(text: try String(contentsOfFile: dir.path + "/" + f, encoding: .utf8)).records.count }
        #expect(all == written)
    }
}
