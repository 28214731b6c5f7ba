import CLBXdp
import LBCore

/// lb's XDP program loaded but not attached: for checking what it does with a frame
/// (BPF_PROG_TEST_RUN), in tests and `lb` diagnostics. Needs CAP_BPF.
public final class XDPProgram {
    let prog: OpaquePointer
    var config: lb_xdp_config

    public enum Action: UInt32 { case aborted = 0, drop, pass, tx, redirect }

    public init(object: String? = nil, divert: DivertFilter?) throws(BrokerError) {
        let path = try AFXDPIngress.findObject(object)
        var err = [CChar](repeating: 0, count: 512)
        var p: OpaquePointer? = nil
        guard lbx_prog_open(path, &p, &err, err.count) == 0, let p else { throw BrokerError(XDPText.text(err)) }
        prog = p
        config = DivertFilter.config(divert)
        guard lbx_prog_configure(prog, &config, &err, err.count) == 0 else { throw BrokerError(XDPText.text(err)) }
    }

    /// Drops a shunted flow in the program (its SYN, FIN and RST still pass): the rule's
    /// directions, for plain TCP/UDP flows and those inside VXLAN and GENEVE. The first one
    /// turns the lookup on.
    public func shunt(_ r: ShuntTable.Rule) throws(BrokerError) {
        let map = XDPShuntMap(prog: prog, config: config)
        try map.shunt(r)
        config = map.config
    }

    /// Takes a flow out; false if it was not in.
    @discardableResult
    public func unshunt(_ r: ShuntTable.Rule) -> Bool { XDPShuntMap(prog: prog, config: config).unshunt(r) }

    /// What the program dropped of a shunted flow (packets and IP bytes, a to b and b to a), or
    /// nil if it is not in.
    public func shuntCounts(_ r: ShuntTable.Rule) -> XDPShuntCounts? { XDPShuntMap(prog: prog, config: config).counts(r) }

    static func key(_ r: ShuntTable.Rule) -> lb_shunt_key {
        var k = lb_shunt_key()
        withUnsafeMutableBytes(of: &k.a) { b in for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: r.a.hi >> UInt64(56 - 8 * i)); b[8 + i] = UInt8(truncatingIfNeeded: r.a.lo >> UInt64(56 - 8 * i)) } }
        withUnsafeMutableBytes(of: &k.b) { b in for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: r.b.hi >> UInt64(56 - 8 * i)); b[8 + i] = UInt8(truncatingIfNeeded: r.b.lo >> UInt64(56 - 8 * i)) } }
        k.a_port = r.a.port
        k.b_port = r.b.port
        k.proto = r.proto
        return k
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

    /// The program run `repeat` times on `frame` in the kernel: what it returns and the mean
    /// nanoseconds of one run, as the kernel measures them (bench/shunt.sh).
    public func time(_ frame: [UInt8], repeat n: UInt32) throws(BrokerError) -> (action: Action, ns: UInt32) {
        var action: UInt32 = 0, ns: UInt32 = 0
        let rc = frame.withUnsafeBytes { lbx_prog_test_time(prog, $0.baseAddress, UInt32($0.count), n, &action, &ns) }
        guard rc == 0 else { throw BrokerError("BPF_PROG_TEST_RUN failed: errno \(-rc)") }
        return (Action(rawValue: action) ?? .aborted, ns)
    }

    public struct Counts: Equatable, Sendable {
        public var diverted: UInt64, passed: UInt64, noSocket: UInt64, notIP: UInt64, shunted: UInt64
        public init(diverted: UInt64 = 0, passed: UInt64 = 0, noSocket: UInt64 = 0, notIP: UInt64 = 0, shunted: UInt64 = 0) {
            self.diverted = diverted; self.passed = passed; self.noSocket = noSocket; self.notIP = notIP; self.shunted = shunted
        }
    }

    public var counts: Counts {
        var c = [UInt64](repeating: 0, count: Int(LB_XDP_NSTATS))
        lbx_prog_counters(prog, &c)
        return Counts(diverted: c[Int(LB_XDP_DIVERTED)], passed: c[Int(LB_XDP_PASSED)], noSocket: c[Int(LB_XDP_NO_SOCKET)],
                      notIP: c[Int(LB_XDP_SHORT)], shunted: c[Int(LB_XDP_SHUNTED)])
    }
}

/// What the XDP program dropped of one shunted flow.
public struct XDPShuntCounts: Equatable, Sendable {
    public var packetsAB: UInt64, ipBytesAB: UInt64, packetsBA: UInt64, ipBytesBA: UInt64
    public var packets: UInt64 { packetsAB &+ packetsBA }
    public var ipBytes: UInt64 { ipBytesAB &+ ipBytesBA }
}

/// The shunted flows of an XDP program ("lb_shunts"), for the control thread: it puts in the
/// flows shunted in every group and reads what the program dropped. The program belongs to
/// the ingress, which outlives the control thread's use of this.
public final class XDPShuntMap: @unchecked Sendable {
    let prog: OpaquePointer
    var config: lb_xdp_config

    init(prog: OpaquePointer, config: lb_xdp_config) {
        self.prog = prog
        self.config = config
    }

    /// Puts a flow in with the rule's directions; the first one turns the lookup on.
    public func shunt(_ r: ShuntTable.Rule) throws(BrokerError) {
        var k = XDPProgram.key(r)
        var err = [CChar](repeating: 0, count: 512)
        guard lbx_prog_shunt_set(prog, &k, r.directions.rawValue, &err, err.count) == 0 else { throw BrokerError(XDPText.text(err)) }
        if config.shunting == 0 {
            config.shunting = 1
            guard lbx_prog_configure(prog, &config, &err, err.count) == 0 else { throw BrokerError(XDPText.text(err)) }
        }
    }

    /// Takes a flow out; false if it was not in.
    @discardableResult
    public func unshunt(_ r: ShuntTable.Rule) -> Bool {
        var k = XDPProgram.key(r)
        return lbx_prog_shunt_del(prog, &k) == 0
    }

    public func counts(_ r: ShuntTable.Rule) -> XDPShuntCounts? {
        var k = XDPProgram.key(r)
        var v = lb_shunt_value()
        guard lbx_prog_shunt_get(prog, &k, &v) == 0 else { return nil }
        return XDPShuntCounts(packetsAB: v.packets_ab, ipBytesAB: v.ip_bytes_ab, packetsBA: v.packets_ba, ipBytesBA: v.ip_bytes_ba)
    }
}
