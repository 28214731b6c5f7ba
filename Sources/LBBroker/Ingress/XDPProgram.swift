import CLBXdp

/// lb's XDP program loaded but not attached: for checking what it does with a frame
/// (BPF_PROG_TEST_RUN), in tests and `lb` diagnostics. Needs CAP_BPF.
public final class XDPProgram {
    let prog: OpaquePointer

    public enum Action: UInt32 { case aborted = 0, drop, pass, tx, redirect }

    public init(object: String? = nil, divert: DivertFilter?) throws(BrokerError) {
        let path = try AFXDPIngress.findObject(object)
        var err = [CChar](repeating: 0, count: 512)
        var p: OpaquePointer? = nil
        guard lbx_prog_open(path, &p, &err, err.count) == 0, let p else { throw BrokerError(XDPText.text(err)) }
        prog = p
        var cfg = DivertFilter.config(divert)
        guard lbx_prog_configure(prog, &cfg, &err, err.count) == 0 else { throw BrokerError(XDPText.text(err)) }
    }

    deinit { lbx_prog_close(prog) }

    /// What the program returns for `frame` (no socket is in its XSKMAP, so a frame it would
    /// divert comes back as `pass` and counts as `noSocket`).
    public func run(_ frame: [UInt8]) throws(BrokerError) -> Action {
        var action: UInt32 = 0
        let rc = frame.withUnsafeBytes { lbx_prog_test_run(prog, $0.baseAddress, UInt32($0.count), &action) }
        guard rc == 0 else { throw BrokerError("BPF_PROG_TEST_RUN failed: errno \(-rc)") }
        return Action(rawValue: action) ?? .aborted
    }

    public struct Counts: Equatable, Sendable {
        public var diverted: UInt64, passed: UInt64, noSocket: UInt64, notIP: UInt64
        public init(diverted: UInt64 = 0, passed: UInt64 = 0, noSocket: UInt64 = 0, notIP: UInt64 = 0) {
            self.diverted = diverted; self.passed = passed; self.noSocket = noSocket; self.notIP = notIP
        }
    }

    public var counts: Counts {
        var c = [UInt64](repeating: 0, count: Int(LB_XDP_NSTATS))
        lbx_prog_counters(prog, &c)
        return Counts(diverted: c[Int(LB_XDP_DIVERTED)], passed: c[Int(LB_XDP_PASSED)], noSocket: c[Int(LB_XDP_NO_SOCKET)],
                      notIP: c[Int(LB_XDP_SHORT)])
    }
}
