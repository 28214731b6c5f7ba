import LBRing

/// The worker's own report (struct lb_consumer_report, written by the consumer into its
/// CONTROL region) as stats fields of its ring. The values come from another process and are
/// untrusted: they are shown raw, derived values are clamped, and nothing is computed that
/// could trap (no overflow, no division by zero, no negative age).
///
///   packets_processed_by_worker  what the worker says it has finished with (raw)
///   worker_loss_gaps, worker_loss_acks  its own loss estimate (Zeek capture_loss: gaps of acks, raw)
///   worker_loss_percent          100 * gaps / acks, clamped to 0...100; null while acks == 0
///                                (no evidence either way: never shown as 0 %)
///   worker_report_age_s          seconds since the worker's last report; null if it never reported
///   worker_report_pid            the pid the worker wrote (null if none)
///   worker_report_suspect        true when the report cannot be right: more gaps than acks,
///                                more processed than lb forwarded to the ring, a report time
///                                more than 5 s in the future
enum WorkerReportFields {
    static func fill(_ s: inout RingStatus, _ r: ConsumerReport, nowWallNanos: UInt64) {
        s.consumerPacketsProcessed = r.packetsProcessed
        s.packetsProcessedByWorker = r.packetsProcessed
        s.workerLossGaps = r.lossGaps
        s.workerLossAcks = r.lossAcks
        if r.lossAcks > 0 {
            s.workerLossPercent = r.lossGaps >= r.lossAcks ? 100 : Double(r.lossGaps) / Double(r.lossAcks) * 100
        }
        if r.heartbeatNanos != 0 {
            s.workerReportAgeS = nowWallNanos > r.heartbeatNanos ? Double(nowWallNanos - r.heartbeatNanos) / 1e9 : 0
        }
        if r.pid > 0 { s.workerReportPid = Int(r.pid) }
        let future = r.heartbeatNanos > nowWallNanos && r.heartbeatNanos - nowWallNanos > 5_000_000_000
        s.workerReportSuspect = r.lossGaps > r.lossAcks || r.packetsProcessed > s.packetsForwarded || future
    }
}
