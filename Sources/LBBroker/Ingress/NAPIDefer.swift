import Glibc
import LBSys

/// `--napi-defer USEC`: while lb serves an interface with AF_XDP, the kernel runs the
/// interface's NAPI poll from a timer every USEC µs while traffic flows, instead of scheduling
/// it again for every arrival (the sysfs knobs `gro_flush_timeout` and `napi_defer_hard_irqs`,
/// as DPDK's AF_XDP driver recommends and Suricata's AF_XDP capture sets). The receive work then
/// comes in large batches: fewer wake-ups of the NAPI thread, which preempted lb's thread on a
/// CPU they share, and cheaper kernel work per packet (bench/README.md). The previous values
/// are put back at exit. The knobs are per interface, so the host's own traffic on it (with
/// `--divert`) waits up to USEC µs more too.
final class NAPIDefer: @unchecked Sendable {
    let iface: String
    /// the knobs lb changed and their values before
    var saved: [(name: String, value: String)] = []

    private init(iface: String) { self.iface = iface }

    static func path(_ iface: String, _ name: String) -> String { "/sys/class/net/\(iface)/\(name)" }

    /// Sets the knobs (those not set that way already); nil when there is nothing to undo. If
    /// one cannot be read or set, lb says so and leaves the interface as it was.
    static func apply(iface: String, micros: UInt32, log: (String) -> Void) -> NAPIDefer? {
        guard micros > 0 else { return nil }
        let napi = NAPIDefer(iface: iface)
        for (name, value) in [("gro_flush_timeout", "\(UInt64(micros) * 1000)"), ("napi_defer_hard_irqs", "2")] {
            do {
                guard let old = Sys.readSmallFile(path(iface, name))?.trimmingWhitespace else { throw SysError("read \(path(iface, name))", ENOENT) }
                if old == value { continue }
                try Sys.writeSmallFile(path(iface, name), value)
                napi.saved.append((name, old))
            } catch {
                log("af_xdp:\(iface): warning: cannot set \(name) to \(value) (\(error)); NAPI is left as it was")
                napi.restore(log: log)
                return nil
            }
        }
        log("af_xdp:\(iface): NAPI runs from a \(micros) µs timer while traffic flows (gro_flush_timeout, napi_defer_hard_irqs"
            + (napi.saved.isEmpty ? ": already so)" : "; restored at exit)"))
        return napi.saved.isEmpty ? nil : napi
    }

    /// Puts the saved values back (lb running as an ordinary user after --user cannot: it says so).
    func restore(log: (String) -> Void) {
        for (name, value) in saved.reversed() {
            do { try Sys.writeSmallFile(Self.path(iface, name), value) } catch {
                log("af_xdp:\(iface): cannot restore \(name) to \(value): \(error)")
            }
        }
    }
}
