import Glibc
import LBSys
import Testing

/// Unix SEQPACKET sockets (lb's control channel), TCP listeners (metrics) and UDP sockets
/// (the udp:: ingress) against the real kernel: messages keep their bounds, descriptors and
/// credentials travel, "nothing yet" is a value and failures carry their errno.
@Suite struct SocketTests {
    @Test func seqpacketMessagesDescriptorsAndCredentials() throws {
        let dir = try TempDir("unix")
        let path = dir.path + "/s.sock"
        let listener = try Sys.listenUnix(path)
        defer { Sys.close(listener) }
        Sys.setNonBlocking(listener, true)
        #expect(try Sys.accept(listener) == nil)               // nobody connected yet: a value, not an error
        let client = try Sys.connectUnix(path)
        defer { Sys.close(client) }
        guard let server = try Sys.accept(listener) else { Issue.record("no pending connection"); return }
        defer { Sys.close(server) }
        #expect(fcntl(server, F_GETFL) & O_NONBLOCK != 0 && fcntl(server, F_GETFD) & FD_CLOEXEC != 0)
        let creds = Sys.peerCredentials(server)
        #expect(creds?.pid == getpid() && creds?.uid == getuid() && creds?.gid == getgid())

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
        defer { buffer.deallocate() }
        #expect(try Sys.receive(server, into: buffer) == nil)  // EAGAIN: nil
        #expect(!Sys.readable(server))
        // two messages stay two messages; a descriptor rides with the second
        let memfd = try Sys.memfd("passed")
        defer { Sys.close(memfd) }
        try Sys.truncate(memfd, 12345)
        try Sys.send(client, Array("first".utf8))
        try Sys.send(client, Array("second".utf8), fds: [memfd])
        #expect(Sys.readable(server))
        let one = try Sys.receive(server, into: buffer)
        #expect(one?.count == 5 && one?.fds == [])
        #expect(String(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<5]), as: UTF8.self) == "first")
        let two = try Sys.receive(server, into: buffer)
        #expect(two?.count == 6 && two?.fds.count == 1)
        if let fd = two?.fds.first {
            let size = try Sys.fileSize(fd)
            #expect(fd != memfd && size == 12345)       // the same file, a new descriptor
            #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
            Sys.close(fd)
        }
        // the peer closing reads as a message of 0 bytes, and poll says so
        Sys.close(client)
        var fds = [pollfd(fd: server, events: Int16(POLLIN), revents: 0)]
        try Sys.poll(&fds, timeoutMillis: -1)
        #expect(fds[0].revents & Int16(POLLHUP | POLLIN) != 0)
        #expect(try Sys.receive(server, into: buffer)?.count == 0)
    }

    @Test func unixSocketFailuresCarryTheirErrno() throws {
        let dir = try TempDir("unix-err")
        #expect(throws: SysError("connect", ENOENT)) { _ = try Sys.connectUnix(dir.path + "/nobody.sock") }
        let long = dir.path + "/" + String(repeating: "x", count: 120)
        #expect(throws: SysError("path", ENAMETOOLONG)) { _ = try Sys.listenUnix(long) }
        let path = dir.path + "/taken.sock"
        let first = try Sys.listenUnix(path)
        defer { Sys.close(first) }
        #expect(throws: SysError("bind", EADDRINUSE)) { _ = try Sys.listenUnix(path) }
        // a listener whose path was removed: nothing to connect to
        Sys.unlink(path)
        #expect(throws: SysError("connect", ENOENT)) { _ = try Sys.connectUnix(path) }
    }

    @Test func tcpListenerOnLoopback() throws {
        let (fd, port) = try Sys.listenTCP(address: "127.0.0.1", port: 0)
        defer { Sys.close(fd) }
        #expect(port != 0)
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0)
        #expect(throws: SysError("bind", EADDRINUSE)) { _ = try Sys.listenTCP(address: "127.0.0.1", port: port) }
        #expect(throws: SysError("address", EINVAL)) { _ = try Sys.listenTCP(address: "not an address", port: 0) }
        #expect(throws: SysError("address", EINVAL)) { _ = try Sys.listenTCP(address: "::zz", port: 0) }
        // a client connects and writes; the accepted socket reads it, then EAGAIN, then EOF
        let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(connected == 0)
        #expect(write(c, "GET", 3) == 3)
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        try Sys.poll(&fds, timeoutMillis: -1)
        guard let s = try Sys.accept(fd) else { Issue.record("no connection to accept"); return }
        defer { Sys.close(s) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        var got = 0
        while got < 3 {
            var p = [pollfd(fd: s, events: Int16(POLLIN), revents: 0)]
            try Sys.poll(&p, timeoutMillis: -1)
            got += try Sys.read(s, into: UnsafeMutableRawBufferPointer(rebasing: buffer[got...])) ?? 0
        }
        #expect(String(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<3]), as: UTF8.self) == "GET")
        #expect(try Sys.read(s, into: buffer) == nil)         // nothing more yet: EAGAIN is nil
        close(c)
        var p = [pollfd(fd: s, events: Int16(POLLIN), revents: 0)]
        try Sys.poll(&p, timeoutMillis: -1)
        #expect(try Sys.read(s, into: buffer) == 0)           // end of stream
    }

    @Test func tcpListenerOnIPv6Loopback() throws {
        let (fd, port) = try Sys.listenTCP(address: "::1", port: 0)
        defer { Sys.close(fd) }
        #expect(port != 0)
        var a = sockaddr_in6()
        var len = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        #expect(Int32(a.sin6_family) == AF_INET6 && UInt16(bigEndian: a.sin6_port) == port)
    }

    /// recvmmsg/sendmmsg on loopback: a batch goes out and comes back whole, in order; an empty
    /// socket receives 0 messages without waiting.
    @Test func udpBatchesOnLoopback() throws {
        let rx = try Sys.udpSocket(ipv6: false)
        defer { Sys.close(rx) }
        try Sys.bindUDP(rx, address: [127, 0, 0, 1], port: 0)
        let port = try Sys.localPort(rx)
        #expect(port != 0)
        #expect(throws: SysError("bind", EINVAL)) { try Sys.bindUDP(rx, address: [127, 0, 0, 1], port: 0) }   // bound already
        try Sys.setSocketOption(rx, SOL_SOCKET, SO_RCVBUF, 1 << 20, "SO_RCVBUF")
        #expect(try Sys.socketOption(rx, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF") >= 1 << 20)   // the kernel doubles it
        #expect(throws: SysError("setsockopt(bogus)", ENOPROTOOPT)) { try Sys.setSocketOption(rx, SOL_SOCKET, 9999, 1, "bogus") }

        let n = 8
        let msgs = UnsafeMutablePointer<MMsgHdr>.allocate(capacity: n)
        let iovs = UnsafeMutablePointer<iovec>.allocate(capacity: n)
        let bufs = UnsafeMutableRawPointer.allocate(byteCount: n * 64, alignment: 64)
        defer { msgs.deallocate(); iovs.deallocate(); bufs.deallocate() }
        func reset() {
            for i in 0..<n {
                iovs[i] = iovec(iov_base: bufs + i * 64, iov_len: 64)
                msgs[i] = MMsgHdr()
                msgs[i].hdr.msg_iov = iovs + i
                msgs[i].hdr.msg_iovlen = 1
            }
        }
        reset()
        #expect(try Sys.receiveMessages(rx, msgs, count: n) == 0)
        #expect(!Sys.waitReadable(rx, timeoutMillis: 0))

        let tx = try Sys.udpSocket(ipv6: false)
        defer { Sys.close(tx) }
        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_port = port.bigEndian
        to.sin_addr.s_addr = inet_addr("127.0.0.1")
        reset()
        for i in 0..<n {
            (bufs + i * 64).initializeMemory(as: UInt8.self, repeating: UInt8(i), count: 10 + i)
            iovs[i].iov_len = 10 + i
            withUnsafeMutablePointer(to: &to) { msgs[i].hdr.msg_name = UnsafeMutableRawPointer($0) }
            msgs[i].hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        #expect(try Sys.sendMessages(tx, msgs, count: n) == n)
        #expect(Sys.waitReadable(rx, timeoutMillis: -1))
        reset()
        var got: [Int] = []
        while got.count < n {
            if !Sys.waitReadable(rx, timeoutMillis: -1) { continue }
            let k = try Sys.receiveMessages(rx, msgs, count: n)
            for i in 0..<k {
                let len = Int(msgs[i].len)
                let first = (bufs + i * 64).load(as: UInt8.self)
                #expect(len == 10 + Int(first))
                got.append(Int(first))
            }
            reset()
        }
        #expect(got == Array(0..<n))
        #expect(throws: SysError("recvmmsg", EBADF)) { _ = try Sys.receiveMessages(-1, msgs, count: n) }
    }
}
