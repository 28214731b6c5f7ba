import Glibc
import LBRing
import LBSys

/// Who may read traffic. Rings are memfds, not files, so "ring file permissions" map onto:
///   - the ring memfds: mode 0640, group --ring-group (what /proc/PID/fd would show);
///   - the control socket `<run-dir>/NAME.sock`: mode 0660 (connecting needs write permission),
///     group --ring-group — the kernel refuses connect(2) to anyone else, so only members of
///     the group (and lb's own user, and root) can attach, tap or read stats;
///   - the run directory, when --ring-group is given: mode 0750, group --ring-group.
/// The consumer side checks the other way round (LBWorker): the socket and the memfds it gets
/// must belong to the user lb runs as (SO_PEERCRED of lb's end of the connection).
enum RingPermissions {
    static func groupID(_ name: String?) throws(BrokerError) -> gid_t? {
        guard let name else { return nil }
        if let g = getgrnam(name) { return g.pointee.gr_gid }
        if let n = UInt32(name), getgrgid(n) != nil { return n }
        throw BrokerError("--ring-group \(name): no such group")
    }

    /// The socket gets the group, then mode 0660. It was bound with mode 0600 (umask 0177 in
    /// ControlServer.start), so it is never open to more users than asked, not even for an
    /// instant. A step that fails stops lb: rings readable by more users than the operator
    /// asked for are worse than no lb.
    static func applyToSocket(_ path: String, group: gid_t?) throws(BrokerError) {
        if let group, chown(path, uid_t.max, group) != 0 { throw failure("give \(path) to group \(group)", SysError("chown")) }
        if chmod(path, 0o660) != 0 { throw failure("set mode 0660 on \(path)", SysError("chmod")) }
    }

    /// The run directory must be lb's user's (or root's) and writable by nobody else: another user who can
    /// write there could unlink lb's socket and put one of their own in its place (a sticky
    /// directory, like /tmp, prevents that). With --ring-group it becomes 0750, group GROUP.
    static func applyToRunDirectory(_ dir: String, group: gid_t?) throws(BrokerError) {
        var st = stat()
        guard lstat(dir, &st) == 0 else { throw failure("use the run directory \(dir)", SysError("stat")) }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw BrokerError("--run-dir \(dir) is not a directory") }
        guard st.st_uid == geteuid() || st.st_uid == 0 else {
            throw BrokerError("--run-dir \(dir) belongs to uid \(st.st_uid), not to lb's user (uid \(geteuid())): that user could replace lb's sockets; give lb a directory of its own")
        }
        if st.st_mode & 0o022 != 0 && st.st_mode & S_ISVTX == 0 && group == nil {
            throw BrokerError("--run-dir \(dir) has mode \(String(st.st_mode & 0o7777, radix: 8)): other users could replace lb's sockets; chmod go-w it or give lb a directory of its own")
        }
        guard let group else { return }
        if chown(dir, uid_t.max, group) != 0 { throw failure("give \(dir) to group \(group)", SysError("chown")) }
        if chmod(dir, 0o750) != 0 { throw failure("set mode 0750 on \(dir)", SysError("chmod")) }
    }

    static func applyToRing(_ memory: RingMemory, group: gid_t?) throws(BrokerError) {
        for fd in [memory.dataDescriptor, memory.controlDescriptor] {
            if let group, fchown(fd, uid_t.max, group) != 0 { throw failure("give the memory of \(memory.name) to group \(group)", SysError("fchown")) }
            if fchmod(fd, 0o640) != 0 { throw failure("set mode 0640 on the memory of \(memory.name)", SysError("fchmod")) }
        }
    }

    static func failure(_ what: String, _ e: SysError) -> BrokerError {
        let hint = e.code == EPERM ? " (lb's user must own it and, for --ring-group, be a member of the group)" : ""
        return BrokerError("cannot \(what): \(e)\(hint)")
    }
}
