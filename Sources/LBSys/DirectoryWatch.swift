import Glibc

/// inotify on one directory: wakes a waiter when an entry is created, moved in or changes its
/// attributes there (a socket being bound, then given its mode). Owns its descriptor.
public struct DirectoryWatch: ~Copyable {
    let fd: Int32

    /// nil when the directory cannot be watched (it does not exist yet, or inotify is out of
    /// watches): the caller falls back to a short sleep.
    public init?(_ dir: String) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        guard inotify_add_watch(fd, dir, UInt32(IN_CREATE | IN_MOVED_TO | IN_ATTRIB)) >= 0 else {
            Glibc.close(fd)
            return nil
        }
        self.fd = fd
    }

    deinit { Glibc.close(fd) }

    /// Waits until something changes in the directory or `timeoutMillis` pass; consumes the events.
    public func wait(timeoutMillis: Int32) {
        var p = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        _ = Glibc.poll(&p, 1, timeoutMillis)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while buffer.withUnsafeMutableBytes({ Glibc.read(fd, $0.baseAddress, $0.count) }) > 0 {}
    }
}
