import CLBXdp
import Glibc
import LBRing
import LBSys

// One owner per kernel resource of a live ingress. Each is ~Copyable: it cannot be copied, so
// its resource is released exactly once, by its deinit — also when opening fails halfway,
// since what was opened so far is already owned.

/// C errors of CLBXdp come back as text in a buffer.
enum XDPText {
    static func text(_ buf: [CChar]) -> String { buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } }
}

/// lb's XDP program, loaded (and, once `attach` succeeded, attached: closing the program's
/// bpf_link detaches it, and the kernel does the same if lb is killed).
struct XDPAttachment: ~Copyable {
    let prog: OpaquePointer
    /// native or generic, once attached
    private(set) var mode: XDPMode? = nil

    init(object: String, divert: DivertFilter?) throws(BrokerError) {
        var err = [CChar](repeating: 0, count: 512)
        var p: OpaquePointer? = nil
        guard lbx_prog_open(object, &p, &err, err.count) == 0, let p else { throw BrokerError(XDPText.text(err)) }
        var cfg = DivertFilter.config(divert)
        guard lbx_prog_configure(p, &cfg, &err, err.count) == 0 else {
            lbx_prog_close(p)
            throw BrokerError(XDPText.text(err))
        }
        prog = p
    }

    deinit { lbx_prog_close(prog) }

    /// Attaches in `wanted` mode; `.auto` is native, else generic with a message.
    mutating func attach(ifindex: Int32, iface: String, _ wanted: XDPMode, log: (String) -> Void) throws(BrokerError) {
        var err = [CChar](repeating: 0, count: 512)
        func tryAttach(_ m: Int32) -> Int32 { lbx_prog_attach(prog, ifindex, m, &err, err.count) }
        switch wanted {
        case .native, .generic:
            let m = wanted == .native ? LBX_MODE_NATIVE : LBX_MODE_GENERIC
            guard tryAttach(Int32(m)) == 0 else { throw BrokerError(XDPText.text(err)) }
            mode = wanted
        case .auto:
            let rc = tryAttach(Int32(LBX_MODE_NATIVE))
            if rc == -EBUSY { throw BrokerError(XDPText.text(err)) }
            if rc == 0 { mode = .native; return }
            log("\(iface): native XDP is not available (\(XDPText.text(err))); falling back to generic (SKB) mode, which is slower")
            guard tryAttach(Int32(LBX_MODE_GENERIC)) == 0 else { throw BrokerError(XDPText.text(err)) }
            mode = .generic
        }
    }

    /// Points queue `q`'s XSKMAP entry at `socket`.
    func setSocket(queue q: Int, _ socket: borrowing XSKSocket) throws(BrokerError) {
        var err = [CChar](repeating: 0, count: 512)
        guard lbx_prog_set_socket(prog, UInt32(q), lbx_xsk_fd(socket.handle), &err, err.count) == 0 else { throw BrokerError(XDPText.text(err)) }
    }

    /// The program's per-verdict counters.
    func counters() -> [UInt64] {
        var c = [UInt64](repeating: 0, count: Int(LB_XDP_NSTATS))
        lbx_prog_counters(prog, &c)
        return c
    }
}

/// One AF_XDP socket of one RX queue, with its UMEM (one per queue: frames, fill and
/// completion rings) — CLBXdp allocates and frees them together.
struct XSKSocket: ~Copyable {
    let handle: OpaquePointer

    init(iface: String, queue: Int, frames: UInt32, frameSize: UInt32, generic: Bool) throws(BrokerError) {
        var err = [CChar](repeating: 0, count: 512)
        var s: OpaquePointer? = nil
        guard lbx_xsk_open(iface, UInt32(queue), frames, frameSize, generic ? 1 : 0, 1, &s, &err, err.count) == 0, let s else {
            throw BrokerError(XDPText.text(err))
        }
        handle = s
    }

    deinit { lbx_xsk_close(handle) }

    /// Gives up ownership (to `XSKSockets`, which closes it).
    consuming func release() -> OpaquePointer {
        let h = handle
        discard self
        return h
    }

    var zeroCopy: Bool { lbx_xsk_zerocopy(handle) != 0 }

    func stats() -> lbx_xsk_stats {
        var one = lbx_xsk_stats()
        _ = lbx_xsk_stats(handle, &one)
        return one
    }
}

/// The AF_XDP sockets of every served queue (an array cannot hold ~Copyable values: a fixed
/// buffer of handles, each closed once).
struct XSKSockets: ~Copyable {
    private let handles: UnsafeMutableBufferPointer<OpaquePointer>
    private(set) var count = 0

    init(capacity: Int) { handles = .allocate(capacity: max(capacity, 1)) }

    deinit {
        for i in 0..<count { lbx_xsk_close(handles[i]) }
        handles.deallocate()
    }

    /// Takes ownership of `socket`.
    mutating func append(_ socket: consuming XSKSocket) {
        handles[count] = socket.release()
        count += 1
    }

    subscript(i: Int) -> OpaquePointer { handles[i] }

    /// XDP_STATISTICS summed over the sockets.
    func totals() -> lbx_xsk_stats {
        var sum = lbx_xsk_stats()
        for i in 0..<count {
            var one = lbx_xsk_stats()
            _ = lbx_xsk_stats(handles[i], &one)
            sum.rx_dropped &+= one.rx_dropped
            sum.rx_invalid_descs &+= one.rx_invalid_descs
            sum.rx_ring_full &+= one.rx_ring_full
            sum.rx_fill_ring_empty_descs &+= one.rx_fill_ring_empty_descs
            sum.multibuffer &+= one.multibuffer
            sum.truncated &+= one.truncated
        }
        return sum
    }
}

/// An AF_PACKET socket with its TPACKET_V3 ring.
struct TPacketRing: ~Copyable {
    let handle: OpaquePointer

    init(iface: String, blockSize: UInt32, blockCount: UInt32) throws(BrokerError) {
        var err = [CChar](repeating: 0, count: 512)
        var t: OpaquePointer? = nil
        guard lbx_tpacket_open(iface, blockSize, blockCount, 5, &t, &err, err.count) == 0, let t else { throw BrokerError(XDPText.text(err)) }
        handle = t
    }

    deinit { lbx_tpacket_close(handle) }

    func stats() -> lbx_tpacket_stats {
        var s = lbx_tpacket_stats()
        _ = lbx_tpacket_stats(handle, &s)
        return s
    }
}

/// The lock file that makes lb the one lb on an interface (in this network namespace).
struct InterfaceLock: ~Copyable {
    let fd: Int32

    /// nil when locking is not possible here (a warning is logged); throws when another lb holds it.
    static func take(iface: String, log: (String) -> Void) throws(BrokerError) -> InterfaceLock? {
        let dir = getuid() == 0 ? "/run/lb" : RunDirectory.resolve(nil)
        let path = dir + "/xdp-\(iface)-\(Sys.netnsInode()).lock"
        guard (try? Sys.mkdirs(dir)) != nil else { return nil }
        do {
            if let fd = try Sys.tryLockFile(path) { return InterfaceLock(fd: fd) }
        } catch {
            log("warning: cannot lock \(path): \(error)")
            return nil
        }
        let pid = Sys.readSmallFile(path)?.split(separator: "\n").first.map(String.init) ?? "?"
        throw BrokerError("another lb (pid \(pid)) already runs on \(iface) (\(path))")
    }

    private init(fd: Int32) { self.fd = fd }
    deinit { Sys.close(fd) }
}
