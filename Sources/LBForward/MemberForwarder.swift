import CLBRing
import Glibc
import LBCore
import LBRing
import LBSys
import LBWorker
import Synchronization

/// One member of a forwarded group: a thread of lb's that consumes the member's ring, as a
/// worker would, and sends each packet on — inside VXLAN to a remote host (UDP source port from
/// the packet's flow hash, so a receiver that spreads by the 4-tuple keeps each flow on one
/// socket), or out of a local interface. Sends are batched (sendmmsg).
///
/// Health: a remote member is asked every 500 ms whether it is there (`Keepalive`, answered by
/// a receiving lb's udp:: input). After three unanswered keepalives (or an ICMP error the
/// kernel reports on send) the forwarder detaches from its ring, so lb counts the member's
/// packets as dropped (no consumer) and its failover moves the member's buckets to the live
/// members; once a keepalive is answered again it attaches again and the buckets come back.
/// A port member is down while its interface is not up.
public final class MemberForwarder: @unchecked Sendable {
    public let ring: RingName
    public let member: ForwardGroup.Member
    let vni: UInt32
    let packetVNI: Bool
    let keepalive: Bool
    let runDir: String?
    let log: @Sendable (String) -> Void

    /// packets and bytes sent, packets that could not be sent, datagrams over the path MTU
    /// (fragmented by the kernel), times the member went down
    public let sent = Atomic<UInt64>(0), bytes = Atomic<UInt64>(0), failed = Atomic<UInt64>(0)
    public let fragmented = Atomic<UInt64>(0), downs = Atomic<UInt64>(0)
    public let isUp = Atomic<Bool>(false)

    static let batch = 64
    static let probeNanos: UInt64 = 500_000_000
    static let missesForDown: UInt64 = 3

    public init(ring: RingName, member: ForwardGroup.Member, vni: UInt32, packetVNI: Bool = false, keepalive: Bool, runDir: String?,
                log: @escaping @Sendable (String) -> Void) {
        self.ring = ring
        self.member = member
        self.vni = vni
        self.packetVNI = packetVNI
        self.keepalive = keepalive
        self.runDir = runDir
        self.log = log
    }

    /// Opens the member's socket on the calling thread (so that it is open before lb gives up
    /// its privileges, `--user`), then starts the thread. A socket that cannot be opened is
    /// logged; the member's packets are then dropped and counted (no consumer).
    public func start(portTX: PortTX = .auto) {
        guard let link = open(portTX) else { return }
        let box = LinkBox(link)
        _ = Threads.spawn("lb-fwd-\(ring.index)") { [self] in
            guard let open = box.link.take() else { return }
            switch consume open {
            case .vxlan(let l):
                var link = l
                serve(&link)
            case .xdp(let l):
                var link = l
                serve(&link)
            case .packet(let l):
                var link = l
                serve(&link)
            }
        }
    }

    func open(_ portTX: PortTX) -> OpenLink? {
        switch member {
        case .vxlan(let address, let port, _):
            let sock: ForwardSocket
            do { sock = try ForwardSocket(address: address, sendBuffer: 4 << 20) } catch {
                log("forward \(ring) → \(member): \(error); its packets are dropped and counted")
                return nil
            }
            let probe = keepalive ? Prober(address: address, port: port) : nil
            return .vxlan(VXLANLink(sock: sock, port: port, vni: vni, packetVNI: packetVNI, probe: probe))
        case .port(let name):
            let info: InterfaceInfo
            do { info = try Sys.interface(name) } catch {
                log("forward \(ring) → \(member): \(error); its packets are dropped and counted")
                return nil
            }
            if portTX != .afPacket {
                do {
                    let x = try XSKSender(interface: name, index: info.index, zeroCopyOnly: portTX == .auto)
                    log("forward \(ring) → \(member): \(x.kind)")
                    return .xdp(PortLink(sender: x, interface: name, mtu: info.mtu))
                } catch {
                    if portTX == .afXDP {
                        log("forward \(ring) → \(member): \(error); its packets are dropped and counted")
                        return nil
                    }
                    log("forward \(ring) → \(member): \(error); sending with AF_PACKET")
                }
            }
            do {
                let p = try PacketSender(interfaceIndex: info.index, qdiscBypass: false, sendBuffer: 4 << 20)
                log("forward \(ring) → \(member): \(p.kind)")
                return .packet(PortLink(sender: p, interface: name, mtu: info.mtu))
            } catch {
                log("forward \(ring) → \(member): \(error); its packets are dropped and counted")
                return nil
            }
        }
    }

    /// Attaches while the member is up, forwards until the stream ends or the member goes
    /// down, and starts again.
    func serve<L: Link & ~Copyable>(_ link: inout L) {
        let staging = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.batch * (L.headerLength + 65536))
        let offsets = UnsafeMutablePointer<UInt64>.allocate(capacity: Self.batch)
        let lengths = UnsafeMutablePointer<UInt32>.allocate(capacity: Self.batch)
        defer { staging.deallocate(); offsets.deallocate(); lengths.deallocate() }
        var wasDown = false
        var countedDrops: UInt64 = 0
        while true {
            // wait until the member is there
            while !link.healthy(now: Sys.monoNanos()) { usleep(100_000) }
            if wasDown { log("forward \(ring) → \(member): up again; attaching") }
            isUp.store(true, ordering: .relaxed)
            var consumer: RingConsumer
            do { consumer = try RingConsumer.attach(ring, runDir: runDir, waitNanos: 5_000_000_000) } catch {
                if error.code == ENOENT || error.code == ECONNREFUSED { return }      // lb has gone
                usleep(200_000)
                continue
            }
            let mtu = link.pathMTU
            var attempted: UInt64 = 0
            loop: while true {
                var n = 0, at = 0
                consumer.read(max: Self.batch) { i, _, p in
                    let len = link.frame(p, into: staging + at)
                    offsets[n] = UInt64(at)
                    lengths[n] = UInt32(len)
                    if len + L.ipHeader > mtu { fragmented.add(1, ordering: .relaxed) }
                    at += len
                    n += 1
                }
                if n > 0 {
                    var done = 0, spins = 0
                    while done < n {
                        let k: Int
                        do { k = try link.send(base: staging, offsets: offsets + done, lengths: lengths + done, count: n - done) } catch {
                            // the frame at `done` was refused (too long for the port, ICMP
                            // error, ...): it is counted, the ones after it still go
                            failed.add(1, ordering: .relaxed)
                            link.sendFailed(error)
                            done += 1
                            continue
                        }
                        if k == 0 {
                            spins += 1
                            if spins > 1000 { failed.add(UInt64(n - done), ordering: .relaxed); break }
                            usleep(50)
                        }
                        var b = 0
                        for j in done..<(done + k) { b += Int(lengths[j]) - L.headerLength }
                        bytes.add(UInt64(b), ordering: .relaxed)
                        sent.add(UInt64(k), ordering: .relaxed)
                        done += k
                    }
                    attempted &+= UInt64(n)
                    countDrops(link.dropped, since: &countedDrops)
                    report(&consumer, attempted: attempted)
                    consumer.release()
                }
                if !link.healthy(now: Sys.monoNanos()) {
                    downs.add(1, ordering: .relaxed)
                    isUp.store(false, ordering: .relaxed)
                    log("forward \(ring) → \(member): down (\(link.why)); detaching, its buckets move after the failover time")
                    wasDown = true
                    break loop
                }
                if n == 0 {
                    switch consumer.wait(timeoutNanos: 100_000_000) {
                    case .packets, .timeout: continue
                    case .endOfStream, .producerGone:
                        // what the link still holds leaves (or is counted) before the ring is let go
                        failed.add(link.flush(), ordering: .relaxed)
                        countDrops(link.dropped, since: &countedDrops)
                        report(&consumer, attempted: attempted)
                        return
                    }
                }
            }
            _ = consumer          // dropped here: detached
        }
    }
}

extension MemberForwarder {
    /// Counts as not sent the frames the link's device dropped since `counted` (AF_XDP TX in
    /// copy mode learns of them after the send).
    func countDrops(_ dropped: UInt64, since counted: inout UInt64) {
        guard dropped != counted else { return }
        failed.add(dropped &- counted, ordering: .relaxed)
        counted = dropped
    }

    /// The member's worker report to lb: sent, not sent, and handed to it.
    func report(_ consumer: inout RingConsumer, attempted: UInt64) {
        consumer.report(processed: sent.load(ordering: .relaxed), lossGaps: failed.load(ordering: .relaxed), lossAcks: attempted)
    }
}

/// How packets leave: the framing in front of each, the send, and the health check.
protocol Link: ~Copyable {
    /// bytes lb writes in front of the frame (UDP + VXLAN headers), and the IP header the
    /// kernel adds (for the MTU check)
    static var headerLength: Int { get }
    static var ipHeader: Int { get }
    var pathMTU: Int { get }
    /// why it is down, for the log
    var why: String { get }
    /// writes the datagram or frame for `p` at `to`; returns its length
    func frame(_ p: RingPacket, into to: UnsafeMutablePointer<UInt8>) -> Int
    func send(base: UnsafePointer<UInt8>, offsets: UnsafePointer<UInt64>, lengths: UnsafePointer<UInt32>, count: Int) throws(SysError) -> Int
    mutating func sendFailed(_ e: SysError)
    mutating func healthy(now: UInt64) -> Bool
    /// frames the device dropped after they were sent, so far (AF_XDP TX in copy mode)
    var dropped: UInt64 { get }
    /// lets what was sent leave before the member lets go of its ring; the frames that could not
    func flush() -> UInt64
}

/// VXLAN to one remote host: [UDP][VXLAN][the frame as the ring holds it].
struct VXLANLink: Link, ~Copyable {
    let sock: ForwardSocket
    let port: UInt16
    let vni: UInt32
    /// the packet's own tunnel id where it has one that fits (ForwardGroup.packetVNI)
    let packetVNI: Bool
    var probe: Prober?
    var refused = false
    static var headerLength: Int { 16 }
    static var ipHeader: Int { 20 }
    var pathMTU: Int { sock.pathMTU ?? 1500 }
    var why: String { refused ? "the host refused a datagram (ICMP)" : "\(MemberForwarder.missesForDown) keepalives unanswered" }

    init(sock: consuming ForwardSocket, port: UInt16, vni: UInt32, packetVNI: Bool, probe: Prober?) {
        self.packetVNI = packetVNI
        self.sock = sock
        self.port = port
        self.vni = vni
        self.probe = probe
    }

    @inline(__always)
    func frame(_ p: RingPacket, into to: UnsafeMutablePointer<UInt8>) -> Int {
        let n = p.bytes.count
        let h = p.descriptor.flow_hash
        let sport = UInt16(0xC000) | UInt16(truncatingIfNeeded: h & 0x3FFF)      // 49152-65535, per flow
        let raw = UnsafeMutableRawPointer(to)
        raw.storeBytes(of: sport.bigEndian, as: UInt16.self)
        raw.storeBytes(of: port.bigEndian, toByteOffset: 2, as: UInt16.self)
        raw.storeBytes(of: UInt16(truncatingIfNeeded: 16 + n).bigEndian, toByteOffset: 4, as: UInt16.self)
        raw.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)          // IPv4: no checksum; IPv6: the kernel's
        raw.storeBytes(of: UInt32(0x0800_0000).bigEndian, toByteOffset: 8, as: UInt32.self)
        let d = p.descriptor
        let id = packetVNI && d.depth > 0 && d.vni < 1 << 24 ? d.vni : vni
        raw.storeBytes(of: (id << 8).bigEndian, toByteOffset: 12, as: UInt32.self)
        if let b = p.bytes.baseAddress { (raw + 16).copyMemory(from: b, byteCount: n) }
        return 16 + n
    }

    func send(base: UnsafePointer<UInt8>, offsets: UnsafePointer<UInt64>, lengths: UnsafePointer<UInt32>, count: Int) throws(SysError) -> Int {
        try sock.send(base: base, offsets: offsets, lengths: lengths, count: count)
    }

    var dropped: UInt64 { 0 }
    func flush() -> UInt64 { 0 }

    mutating func sendFailed(_ e: SysError) {
        if e.code == ECONNREFUSED || e.code == EHOSTUNREACH || e.code == ENETUNREACH { refused = true }
    }

    mutating func healthy(now: UInt64) -> Bool {
        guard probe != nil else { return true }
        if refused {
            refused = false
            probe!.markDown()
        }
        return probe!.tick(now: now)
    }
}

/// A member's open link, handed from `start` to the member's thread.
enum OpenLink: ~Copyable {
    case vxlan(VXLANLink)
    case xdp(PortLink<XSKSender>)
    case packet(PortLink<PacketSender>)
}

final class LinkBox: @unchecked Sendable {
    var link: OpenLink?
    init(_ link: consuming OpenLink) { self.link = consume link }
}

/// A local interface: the frame as it is, through AF_XDP TX or AF_PACKET.
struct PortLink<Sender: FrameSender & ~Copyable>: Link, ~Copyable {
    let sender: Sender
    let interface: String
    let mtu: Int
    static var headerLength: Int { 0 }
    static var ipHeader: Int { -14 }
    var pathMTU: Int { mtu }
    var why: String { "\(interface) is not up" }
    var nextLook: UInt64 = 0
    var up = true

    init(sender: consuming Sender, interface: String, mtu: Int) {
        self.sender = sender
        self.interface = interface
        self.mtu = mtu
    }

    @inline(__always)
    func frame(_ p: RingPacket, into to: UnsafeMutablePointer<UInt8>) -> Int {
        if let b = p.bytes.baseAddress { UnsafeMutableRawPointer(to).copyMemory(from: b, byteCount: p.bytes.count) }
        return p.bytes.count
    }

    func send(base: UnsafePointer<UInt8>, offsets: UnsafePointer<UInt64>, lengths: UnsafePointer<UInt32>, count: Int) throws(SysError) -> Int {
        try sender.send(base: base, offsets: offsets, lengths: lengths, count: count)
    }

    mutating func sendFailed(_ e: SysError) {}

    var dropped: UInt64 { sender.dropped }
    func flush() -> UInt64 { sender.flush() }

    mutating func healthy(now: UInt64) -> Bool {
        if now >= nextLook {
            nextLook = now &+ 500_000_000
            let state = Sys.readSmallFile("/sys/class/net/\(interface)/operstate") ?? "down"
            up = state.hasPrefix("up") || state.hasPrefix("unknown")
        }
        return up
    }
}
