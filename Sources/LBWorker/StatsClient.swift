import Glibc
import LBRing
import LBSys

/// Asks a running lb for its stats over a group's control socket (LB_MODE_STATS). lb answers
/// with JSON lines — one per ring, then one for lb — and closes. Nothing is attached, so the
/// consumers are not disturbed.
public enum StatsClient {
    public struct Answer: Sendable {
        /// the socket asked
        public let socket: String
        /// lb's pid (SO_PEERCRED)
        public let pid: Int32
        public let lines: [String]
    }

    /// The group sockets in the run directory (`NAME.sock`), sorted.
    public static func sockets(runDir: String?) -> [String] {
        let dir = RunDirectory.resolve(runDir)
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            var name = e.pointee.d_name
            let s = withUnsafeBytes(of: &name) { b in String(decoding: b.prefix { $0 != 0 }, as: UTF8.self) }
            if s.hasSuffix(".sock") && s.count > 5 { out.append(dir + "/" + s) }
        }
        return out.sorted()
    }

    /// Asks the lb behind `socket` for its stats.
    public static func fetch(socket path: String, timeoutMillis: Int32 = 3000) throws(AttachError) -> Answer {
        let group = String(path.split(separator: "/").last!.dropLast(5))
        return try ask(socket: path, AttachProtocol.encode(AttachProtocol.Request(group: group, ring: 0, mode: .stats)),
                       what: "stats", timeoutMillis: timeoutMillis)
    }

    /// Sends a shunt request (one line, docs/shunting.md) to the lb serving `group`; the
    /// answer's first line is lb's reply message, the rest its text.
    public static func shunt(runDir: String?, group: String, line: String, timeoutMillis: Int32 = 5000) throws(AttachError) -> Answer {
        let dir = RunDirectory.resolve(runDir)
        let path = RunDirectory.socketPath(dir, group: group)
        let known = sockets(runDir: runDir)
        guard known.contains(path) else {
            let names = known.map { String($0.split(separator: "/").last!.dropLast(5)) }
            throw AttachError("no group '\(group)' in \(dir) (" + (names.isEmpty ? "no lb runs there" : "groups: " + names.joined(separator: ", ")) + ")",
                              code: ENOENT)
        }
        return try ask(socket: path, AttachProtocol.encode(AttachProtocol.Request(group: group, ring: 0, mode: .shunt), payload: line),
                       what: "shunting", timeoutMillis: timeoutMillis, keepMessage: true)
    }

    /// Sends `request` to the lb behind `socket` and reads its reply and the text after it.
    static func ask(socket path: String, _ request: [UInt8], what: String, timeoutMillis: Int32,
                    keepMessage: Bool = false) throws(AttachError) -> Answer {
        let fd: Int32
        do { fd = try Sys.connectUnix(path) } catch {
            throw AttachError(error.code == EACCES ? "\(path): permission denied (only lb's user and members of its --ring-group may connect)"
                                                   : "no lb answers at \(path): \(error)", code: error.code)
        }
        defer { Sys.close(fd) }
        let pid = Sys.peerCredentials(fd)?.pid ?? 0
        var message: [String] = []
        do {
            try Sys.send(fd, request)
        } catch {
            throw AttachError("\(path): \(error)", code: error.code)
        }
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var first = true
        let deadline = Sys.monoNanos() &+ UInt64(timeoutMillis) * 1_000_000
        while true {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
            let left = Int64(deadline) - Int64(Sys.monoNanos())
            guard left > 0 else { throw AttachError("\(path): lb did not answer within \(timeoutMillis) ms") }
            try? Sys.poll(&fds, timeoutMillis: Int32(left / 1_000_000) + 1)
            if fds[0].revents == 0 { continue }
            let got = buffer.withUnsafeMutableBytes { b in try? Sys.receive(fd, into: b, maxFDs: 0) }
            guard let got = got ?? nil else { continue }
            if got.count == 0 { break }
            if first {
                first = false
                let reply = buffer.withUnsafeBytes { AttachProtocol.decodeReply(UnsafeRawBufferPointer(rebasing: $0[..<got.count])) }
                guard let reply else { throw AttachError("\(path): unreadable reply (an lb of another protocol version?)") }
                guard reply.error == 0 else { throw AttachError("\(path): \(reply.message)", code: reply.error) }
                if keepMessage { message = [reply.message] }
                continue
            }
            text += buffer[0..<got.count]
        }
        if first { throw AttachError("\(path): lb closed the connection without answering (an older lb without \(what)?)") }
        let lines = String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init)
        return Answer(socket: path, pid: pid, lines: message + lines)
    }
}

/// The consumer's side of the permissions: the socket it connects to, and the ring memory lb
/// sends, must belong to the user lb runs as — so a socket another user planted in a shared
/// run directory is refused. "The user lb runs as" is $LB_USER (a name or uid) when set, else
/// root or the consumer's own user.
public enum OwnerCheck {
    public static func trustedUIDs() -> [uid_t] {
        if let v = getenv("LB_USER"), v.pointee != 0 {
            let s = String(cString: v)
            if let u = UInt32(s) { return [u] }
            if let pw = getpwnam(s) { return [pw.pointee.pw_uid] }
            return []                       // unknown user: trust nobody (the error says why)
        }
        return geteuid() == 0 ? [0] : [0, geteuid()]
    }

    /// Checks the socket file at `path` and lb's end of the connection `fd`.
    public static func checkSocket(path: String, fd: Int32) throws(AttachError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw AttachError("\(path): \(SysError("stat"))") }
        try requireTrusted(st.st_uid, "\(path) is owned by uid \(st.st_uid), not by", hint: " (set LB_USER if lb runs as another user)")
        // lb started as root and then became --user: its listening socket still names root
        // (SO_PEERCRED is taken at listen time), which is trusted.
        if let peer = Sys.peerCredentials(fd), peer.uid != st.st_uid, peer.uid != 0 {
            throw AttachError("\(path) is owned by uid \(st.st_uid) but served by a process of uid \(peer.uid); refusing it", code: EPERM)
        }
    }

    /// Checks a ring memfd lb sent.
    public static func checkRing(fd: Int32, name: RingName) throws(AttachError) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw AttachError("\(name): \(SysError("fstat"))") }
        try requireTrusted(st.st_uid, "\(name): the ring memory belongs to uid \(st.st_uid), not to", hint: "")
    }

    static func requireTrusted(_ uid: uid_t, _ what: String, hint: String) throws(AttachError) {
        let trusted = trustedUIDs()
        guard trusted.contains(uid) else {
            throw AttachError("\(what) the user lb runs as (\(describe(trusted))); refusing it\(hint)", code: EPERM)
        }
    }

    static func describe(_ uids: [uid_t]) -> String {
        uids.isEmpty ? "LB_USER names no known user" : uids.map { "uid \($0)" }.joined(separator: " or ")
    }
}
