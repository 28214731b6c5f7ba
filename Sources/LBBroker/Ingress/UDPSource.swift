import Glibc
import LBCore
import LBSys

/// `-i udp::ADDR:PORT[:ENCAP][:dlt=LINK]`: mirrored traffic (VXLAN, GENEVE, GENEVE+VXLAN, or
/// raw packets after N bytes) received on an ordinary UDP socket. No capability is needed.
///
/// Datagrams are taken in batches with recvmmsg into preallocated slots. Each slot has 64 bytes
/// of headroom: lb writes the outer Ethernet/IP/UDP header of a valid tunnel datagram there,
/// so the decoder sees the frame it arrived in and hashes it (and fills the tunnel endpoints)
/// exactly as for the same frame from a capture or a NIC. A datagram whose encapsulation does
/// not validate is dropped and counted by reason (`UDPStats`); it never reaches a ring.
///
/// When nothing arrives the source sleeps in poll (100 ms), so the dispatcher notices a stop.
public struct UDPSource: PacketSource, ~Copyable {
    public static let headroom = 64
    /// room for any UDP datagram (a sender with segmentation offload mirrors 64 KiB frames);
    /// a longer one (impossible over IPv4) is counted (`too_long`) and dropped
    public static let maxPayload = 65536
    static let nameSize = 128
    static let controlSize = 128

    let spec: DatagramSpec
    let fd: Int32
    let slots: Int
    /// bytes of one slot: headroom, then the longest datagram kept
    let slotSize: Int
    let maxDatagram: Int
    let buffers: UnsafeMutableRawPointer
    let msgs: UnsafeMutablePointer<MMsgHdr>
    let iovecs: UnsafeMutablePointer<iovec>
    let names: UnsafeMutableRawPointer
    let controls: UnsafeMutableRawPointer
    /// our address (16 bytes; IPv4 in the first 4) when no IP_PKTINFO says otherwise
    let boundAddress: UnsafeMutableRawPointer
    /// one bit per UDP port that carries VXLAN (for geneve+vxlan)
    let vxlanPorts: UnsafeMutablePointer<UInt64>
    /// owns the counters `counters` points into
    let stats: UDPStats
    let counters: UDPStats.Writer
    /// copies of the spec's fields the packet loop reads (so it never touches `spec`'s arrays)
    let encap: DatagramEncap
    let linkType: UInt32
    /// the port the socket is bound to
    public let port: UInt16
    var lastOverflow: UInt32 = 0
    var kernelDrops: UInt64 = 0
    /// datagrams the last recvmmsg returned (delivered or rejected)
    var lastBatch = 0

    public var finished: Bool { false }
    public var isLive: Bool { true }
    public var name: String { spec.description }

    /// Opens the socket. `rcvbuf`: the socket buffer to ask for (the kernel may give less:
    /// logged, and in the stats); `tunnelPorts`: the decoder's, for the VXLAN inside
    /// geneve+vxlan.
    public init(_ spec: DatagramSpec, rcvbuf: Int, reusePort: Bool, batch: Int, tunnelPorts: [TunnelPort],
                stats: UDPStats, maxDatagram: Int = UDPSource.maxPayload, log: (String) -> Void) throws(BrokerError) {
        self.spec = spec
        self.stats = stats
        counters = stats.writer
        encap = spec.encap
        linkType = spec.linkType
        let what = "-i \(spec.description)"
        let fd: Int32
        do { fd = try Sys.udpSocket(ipv6: spec.isIPv6) } catch { throw BrokerError("\(what): \(error)") }
        let granted: Int32
        do {
            if reusePort {
                try Sys.setSocketOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT")
            }
            if rcvbuf > 0 {
                let want = Int32(clamping: rcvbuf)
                // CAP_NET_ADMIN may exceed net.core.rmem_max; an ordinary user gets at most that.
                if (try? Sys.setSocketOption(fd, SOL_SOCKET, SO_RCVBUFFORCE, want, "SO_RCVBUFFORCE")) == nil {
                    try Sys.setSocketOption(fd, SOL_SOCKET, SO_RCVBUF, want, "SO_RCVBUF")
                }
            }
            // The kernel doubles the value asked for (bookkeeping overhead) and reports the double.
            granted = try Sys.socketOption(fd, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF") / 2
            try Sys.setSocketOption(fd, SOL_SOCKET, SO_RXQ_OVFL, 1, "SO_RXQ_OVFL")
            try Sys.setSocketOption(fd, SOL_SOCKET, SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS")
            if spec.isIPv6 {
                try Sys.setSocketOption(fd, Int32(IPPROTO_IPV6), IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO")
            } else {
                try Sys.setSocketOption(fd, Int32(IPPROTO_IP), IP_PKTINFO, 1, "IP_PKTINFO")
            }
            try Sys.bindUDP(fd, address: spec.addressBytes, port: spec.port)
            port = try Sys.localPort(fd)
        } catch {
            Sys.close(fd)
            if error.code == EADDRINUSE {
                throw BrokerError("\(what): port \(spec.port) is in use (several lb processes can share it with --reuseport, each with it)")
            }
            throw BrokerError("\(what): \(error)")
        }
        self.fd = fd
        counters.set(.rcvbufRequested, UInt64(max(0, rcvbuf)))
        counters.set(.rcvbufGranted, UInt64(max(0, granted)))
        if rcvbuf > 0 && Int(granted) < rcvbuf {
            log("\(what): asked for a \(rcvbuf >> 10) KiB socket buffer, the kernel gave \(Int(granted) >> 10) KiB "
                + "(net.core.rmem_max caps it without CAP_NET_ADMIN; raise it with sysctl -w net.core.rmem_max=\(rcvbuf))")
        }

        slots = max(1, batch)
        self.maxDatagram = maxDatagram
        slotSize = (Self.headroom + maxDatagram + 63) & ~63
        buffers = .allocate(byteCount: slots * slotSize, alignment: 64)
        msgs = .allocate(capacity: slots)
        iovecs = .allocate(capacity: slots)
        names = .allocate(byteCount: slots * Self.nameSize, alignment: 8)
        controls = .allocate(byteCount: slots * Self.controlSize, alignment: 8)
        for i in 0..<slots {
            iovecs[i] = iovec(iov_base: buffers + i * slotSize + Self.headroom, iov_len: maxDatagram)
            msgs.advanced(by: i).initialize(to: MMsgHdr())
            msgs[i].hdr.msg_iov = iovecs + i
            msgs[i].hdr.msg_iovlen = 1
            msgs[i].hdr.msg_name = names + i * Self.nameSize
            msgs[i].hdr.msg_control = controls + i * Self.controlSize
        }
        boundAddress = .allocate(byteCount: 16, alignment: 8)
        boundAddress.initializeMemory(as: UInt8.self, repeating: 0, count: 16)
        for (i, b) in spec.addressBytes.enumerated() { boundAddress.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
        vxlanPorts = .allocate(capacity: 1024)
        vxlanPorts.initialize(repeating: 0, count: 1024)
        for t in tunnelPorts where t.kind == .vxlan { vxlanPorts[Int(t.port) >> 6] |= 1 << UInt64(t.port & 63) }
    }

    deinit {
        Sys.close(fd)
        buffers.deallocate()
        msgs.deallocate()
        iovecs.deallocate()
        names.deallocate()
        controls.deallocate()
        boundAddress.deallocate()
        vxlanPorts.deallocate()
    }

    /// One recvmmsg; an error other than "nothing pending" is counted and waited out (1 ms),
    /// so a persistent one cannot make the loop spin.
    @inline(__always)
    func receiveBatch(_ want: Int) -> Int {
        do {
            return try Sys.receiveMessages(fd, msgs, count: want)
        } catch {
            counters.add(.receiveErrors)
            Sys.sleep(nanos: 1_000_000)
            return 0
        }
    }

    public mutating func receive(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        take(into: frames, max: max, wait: true)
    }

    /// After a stop: the datagrams already in the socket's buffer, without waiting. A batch can
    /// hold only rejected datagrams (counted by reason): then it looks again.
    public mutating func drain(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        for _ in 0..<4096 {
            let n = take(into: frames, max: max, wait: false)
            if n > 0 || lastBatch == 0 { return n }
        }
        return 0
    }

    mutating func take(into frames: UnsafeMutablePointer<Frame>, max: Int, wait: Bool) -> Int {
        let want = max < slots ? max : slots
        for i in 0..<want {
            msgs[i].hdr.msg_namelen = socklen_t(Self.nameSize)
            msgs[i].hdr.msg_controllen = Self.controlSize
            msgs[i].hdr.msg_flags = 0
        }
        var n = receiveBatch(want)
        lastBatch = n
        if n == 0 {
            // Idle: sleep until a datagram comes or 100 ms pass (the dispatcher then checks
            // for a stop and publishes).
            guard wait, Sys.waitReadable(fd, timeoutMillis: 100) else { return 0 }
            n = receiveBatch(want)
            lastBatch = n
            if n == 0 { return 0 }
        }
        var count = 0
        var batchBytes: UInt64 = 0
        var accepted: UInt64 = 0
        let now = Sys.wallNanos()
        for i in 0..<n {
            let len = Int(msgs[i].len)
            batchBytes &+= UInt64(len)
            let payload = buffers + i * slotSize + Self.headroom
            let control = UnsafeRawBufferPointer(start: controls + i * Self.controlSize, count: Int(msgs[i].hdr.msg_controllen))
            var ts = now
            var localV6 = false
            var haveLocal = false
            let local = payload - Self.headroom    // 16 bytes of the headroom hold our address until the header is written
            // control messages: timestamp, socket drops, our address
            var c = 0
            while control.count - c >= 16 {
                let clen = Int(control.loadUnaligned(fromByteOffset: c, as: UInt64.self))
                guard clen >= 16, clen <= control.count - c else { break }
                let level = control.loadUnaligned(fromByteOffset: c + 8, as: Int32.self)
                let type = control.loadUnaligned(fromByteOffset: c + 12, as: Int32.self)
                let data = c + 16
                if level == SOL_SOCKET && type == SO_TIMESTAMPNS && clen >= 32 {
                    let s = control.loadUnaligned(fromByteOffset: data, as: Int64.self)
                    let ns = control.loadUnaligned(fromByteOffset: data + 8, as: Int64.self)
                    if s > 0 { ts = UInt64(s) &* 1_000_000_000 &+ UInt64(truncatingIfNeeded: ns) }
                } else if level == SOL_SOCKET && type == SO_RXQ_OVFL && clen >= 20 {
                    let v = control.loadUnaligned(fromByteOffset: data, as: UInt32.self)
                    kernelDrops &+= UInt64(v &- lastOverflow)
                    lastOverflow = v
                } else if level == Int32(IPPROTO_IP) && type == IP_PKTINFO && clen >= 28 {
                    local.copyMemory(from: control.baseAddress! + data + 8, byteCount: 4)
                    haveLocal = true
                } else if level == Int32(IPPROTO_IPV6) && type == IPV6_PKTINFO && clen >= 36 {
                    local.copyMemory(from: control.baseAddress! + data, byteCount: 16)
                    haveLocal = true
                    localV6 = true
                }
                c &+= (clen &+ 7) & ~7
            }
            if msgs[i].hdr.msg_flags & Int32(MSG_TRUNC) != 0 {
                counters.add(reject: .tooLong)
                continue
            }
            let bytes = UnsafeRawBufferPointer(start: payload, count: len)
            if len == Keepalive.length && Keepalive.isProbe(bytes) {
                // a forwarding lb asks whether this lb is there: answer, deliver nothing
                Keepalive.answer(payload)
                Sys.send(fd, bytes, toName: names + i * Self.nameSize, length: Int(msgs[i].hdr.msg_namelen))
                counters.add(.keepalives)
                continue
            }
            let check = encap.check(bytes) { port in
                vxlanPorts[Int(port) >> 6] >> UInt64(port & 63) & 1 != 0
            }
            if check.reject != .none {
                counters.add(reject: check.reject)
                continue
            }
            accepted &+= 1
            if check.hasVNI { counters.add(vni: check.vni, bytes: UInt64(len)) }
            if case .skip(let k) = encap {
                var start = k
                var link = linkType
                if link == 9 {
                    // dlt=ppp: the IP packet behind the PPP header, as a raw-IP frame (lb's
                    // decoder has no PPP link type; workers get Ethernet either way)
                    guard let ip = pppIPStart(bytes, at: k) else {
                        counters.add(reject: .pppNotIP)
                        accepted &-= 1
                        continue
                    }
                    start = ip
                    link = 101
                }
                frames[count] = Frame(bytes: UnsafeRawBufferPointer(start: payload + start, count: len - start),
                                      wireLength: len - start, timestampNanos: ts, linkType: link, input: 0)
                count &+= 1
                continue
            }
            // The sender, from msg_name: an IPv4 address, or an IPv6 one (v4-mapped means IPv4).
            let name = UnsafeRawPointer(names + i * Self.nameSize)
            let family = Int32(name.loadUnaligned(as: UInt16.self))
            let sport = UInt16(bigEndian: name.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            var srcV6 = false
            var src = name + 4                                  // sin_addr
            if family == AF_INET6 {
                src = name + 8                                  // sin6_addr
                let mapped = src.loadUnaligned(as: UInt64.self) == 0
                    && src.loadUnaligned(fromByteOffset: 8, as: UInt32.self) == UInt32(0xFFFF).bigEndian
                if mapped { src += 12 } else { srcV6 = true }
            }
            if !haveLocal {
                local.copyMemory(from: boundAddress, byteCount: 16)
                localV6 = spec.isIPv6
            } else if localV6 && !srcV6 {
                // an IPv4 datagram on a dual-stack socket: our address is v4-mapped
                (local).copyMemory(from: local + 12, byteCount: 4)
            }
            let h = OuterHeader.length(ipv6: srcV6)
            let frameStart = payload - h
            // The header overwrites the headroom (and the address we kept there): copy the
            // address out first.
            var dst = (UInt64(0), UInt64(0))
            withUnsafeMutableBytes(of: &dst) { $0.baseAddress!.copyMemory(from: local, byteCount: 16) }
            var srcCopy = (UInt64(0), UInt64(0))
            withUnsafeMutableBytes(of: &srcCopy) { $0.baseAddress!.copyMemory(from: src, byteCount: srcV6 ? 16 : 4) }
            withUnsafeBytes(of: &srcCopy) { s in
                withUnsafeBytes(of: &dst) { d in
                    OuterHeader.write(frameStart, ipv6: srcV6, src: s.baseAddress!, dst: d.baseAddress!,
                                      sport: sport, dport: port, payloadLength: len)
                }
            }
            frames[count] = Frame(bytes: UnsafeRawBufferPointer(start: frameStart, count: h + len), wireLength: h + len,
                                  timestampNanos: ts, linkType: 1, input: 0)
            count &+= 1
        }
        counters.add(.datagrams, UInt64(n))
        counters.add(.bytes, batchBytes)
        counters.add(.accepted, accepted)
        counters.set(.kernelDrops, kernelDrops)
        return count
    }
}

/// Options of the `udp::` ingress beyond its interface string.
public struct UDPOptions: Equatable, Sendable {
    /// the socket buffer to ask for (`--rcvbuf`)
    public var rcvbuf = 64 << 20
    /// share the port with other lb processes (`--reuseport`): the kernel spreads datagrams
    /// over them by the outer header
    public var reusePort = false
    /// VNIs listed in the stats (`--vni-top`)
    public var vniTop = 10
    public init() {}
}
