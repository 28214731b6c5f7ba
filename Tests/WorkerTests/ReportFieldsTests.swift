import Foundation
@testable import LBBroker
@testable import LBRing
import Testing

/// The worker's report is written by another process: any bit pattern must render as valid
/// JSON with clamped derived values, and never trap.
@Suite struct ReportFieldsTests {
    static func render(_ r: ConsumerReport, forwarded: UInt64 = 100, now: UInt64 = 1_800_000_000_000_000_000) throws -> [String: Any] {
        var s = RingStatus(interface: "w:0", outputRing: 0, group: "w", ring: 0)
        s.packetsForwarded = forwarded
        WorkerReportFields.fill(&s, r, nowWallNanos: now)
        let text = StatusEncoder.encode(s).json
        let obj = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        return try #require(obj, "not a JSON object: \(text)")
    }

    @Test func ordinaryReport() throws {
        let now: UInt64 = 1_800_000_000_000_000_000
        let o = try Self.render(ConsumerReport(pid: 42, heartbeatNanos: now - 2_500_000_000, packetsProcessed: 90,
                                               lossGaps: 1, lossAcks: 8), now: now)
        #expect((o["packets_processed_by_worker"] as? NSNumber)?.intValue == 90)
        #expect((o["worker_loss_percent"] as? NSNumber)?.doubleValue == 12.5)
        #expect((o["worker_report_age_s"] as? NSNumber)?.doubleValue == 2.5)
        #expect((o["worker_report_pid"] as? NSNumber)?.intValue == 42)
        #expect(o["worker_report_suspect"] as? Bool == false)
    }

    @Test func neverReported() throws {
        let o = try Self.render(ConsumerReport(pid: 0, heartbeatNanos: 0, packetsProcessed: 0, lossGaps: 0, lossAcks: 0))
        #expect(o["worker_report_age_s"] is NSNull && o["worker_loss_percent"] is NSNull && o["worker_report_pid"] is NSNull)
        #expect(o["worker_report_suspect"] as? Bool == false)
    }

    @Test(arguments: [
        ConsumerReport(pid: -1, heartbeatNanos: .max, packetsProcessed: .max, lossGaps: .max, lossAcks: .max),
        ConsumerReport(pid: .max, heartbeatNanos: 1, packetsProcessed: 101, lossGaps: .max, lossAcks: 1),
        ConsumerReport(pid: .min, heartbeatNanos: .max / 2, packetsProcessed: 0, lossGaps: 5, lossAcks: 0),
    ])
    func absurdReports(_ r: ConsumerReport) throws {
        let o = try Self.render(r)
        #expect(o["worker_report_suspect"] as? Bool == true)
        if let p = (o["worker_loss_percent"] as? NSNumber)?.doubleValue { #expect(p >= 0 && p <= 100) }
        else { #expect(o["worker_loss_percent"] is NSNull && r.lossAcks == 0) }
        let age = (o["worker_report_age_s"] as? NSNumber)?.doubleValue ?? -1
        #expect(age >= 0)
    }
}
