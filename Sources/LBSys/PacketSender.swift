import CLBShim
import Glibc

/// What lb needs to know about a network interface before sending on it.
public struct InterfaceInfo: Sendable {
    public let name: String
    public let index: Int32
    public let mtu: Int
    /// ARPHRD_* of the interface (1 = Ethernet).
    public let hardwareType: Int32
    public var isEthernet: Bool { hardwareType == 1 }
}

extension Sys {
    public static func interface(_ name: String) throws(SysError) -> InterfaceInfo {
        var index: Int32 = 0, mtu: Int32 = 0, hw: Int32 = 0
        guard lb_shim_gen_interface(name, &index, &mtu, &hw) == 0 else { throw SysError("interface \(name)") }
        return InterfaceInfo(name: name, index: index, mtu: Int(mtu), hardwareType: hw)
    }

    /// SIGINT and SIGTERM set a flag (read with `stopRequested`) instead of ending the process.
    public static func installStopHandlers() throws(SysError) {
        guard lb_shim_gen_install_stop_handlers() == 0 else { throw SysError("sigaction") }
    }

    public static var stopRequested: Bool { lb_shim_gen_stop_requested() != 0 }

    /// Sleeps until CLOCK_MONOTONIC reaches `deadline` (ns); returns early on a signal.
    public static func sleep(untilMonoNanos deadline: UInt64) {
        _ = lb_shim_gen_sleep_until(deadline)
    }

    /// How late the kernel may fire this thread's timers (50 us by default): precise pacing wants 1 us.
    public static func setTimerSlack(nanos: UInt) {
        _ = lb_shim_gen_set_timer_slack(nanos)
    }
}

/// An AF_PACKET socket that sends whole link-layer frames on one interface (and receives
/// nothing). Frames are given as offsets and lengths into one buffer, so that a batch costs
/// one sendmmsg(2) and no allocation.
public struct PacketSender: ~Copyable {
    public let fd: Int32
    /// The most frames one `send` call takes.
    public static let maxBatch = Int(LB_SHIM_GEN_MAX_BATCH)

    /// - Parameters:
    ///   - qdiscBypass: PACKET_QDISC_BYPASS: frames skip the qdisc layer and go to the driver.
    ///   - sendBuffer: SO_SNDBUF(FORCE) in bytes; 0 keeps the default.
    public init(interfaceIndex: Int32, qdiscBypass: Bool, sendBuffer: Int) throws(SysError) {
        let fd = lb_shim_gen_packet_socket(interfaceIndex, qdiscBypass ? 1 : 0, Int32(clamping: sendBuffer))
        guard fd >= 0 else { throw SysError("AF_PACKET socket on ifindex \(interfaceIndex)") }
        self.fd = fd
    }

    deinit { Sys.close(fd) }

    /// Sends frames `0..<count` of the arrays, in order; returns how many went. 0 means the
    /// device or the socket buffer was full (ENOBUFS, EAGAIN): try again. Other errors throw.
    @inline(__always)
    public func send(base: UnsafePointer<UInt8>, offsets: UnsafePointer<UInt64>, lengths: UnsafePointer<UInt32>,
                     count: Int) throws(SysError) -> Int {
        try Sys.sendBatch(fd, base: base, offsets: offsets, lengths: lengths, count: count)
    }
}

extension Sys {
    /// One sendmmsg(2) of messages `0..<count` (at most `PacketSender.maxBatch`), message i being
    /// `lengths[i]` bytes at `base + offsets[i]`; returns how many went. 0 means the device or
    /// the socket buffer was full (ENOBUFS, EAGAIN): try again. Other errors throw.
    @inline(__always)
    public static func sendBatch(_ fd: Int32, base: UnsafePointer<UInt8>, offsets: UnsafePointer<UInt64>,
                                 lengths: UnsafePointer<UInt32>, count: Int) throws(SysError) -> Int {
        let n = lb_shim_gen_send_batch(fd, base, offsets, lengths, Int32(min(count, PacketSender.maxBatch)))
        if n >= 0 { return Int(n) }
        let e = errno
        if e == ENOBUFS || e == EAGAIN || e == EWOULDBLOCK { return 0 }
        throw SysError("sendmmsg", e)
    }
}
