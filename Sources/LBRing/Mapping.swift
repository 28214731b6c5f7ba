import LBSys

/// A file descriptor that closes itself.
public struct OwnedFD: ~Copyable {
    public let raw: Int32
    public init(_ raw: Int32) { self.raw = raw }
    deinit { Sys.close(raw) }
}

/// A shared mapping that unmaps itself. Its pages are faulted in when it is made
/// (MAP_POPULATE): lb allocates a ring's memory up front and every reader maps all of it, so
/// the first lap through a ring takes no page faults (some microseconds each, per 4 KiB, on
/// the data path otherwise).
public struct Mapping: ~Copyable {
    public let base: UnsafeMutableRawPointer
    public let size: Int

    public init(fd: Int32, size: Int, writable: Bool) throws(SysError) {
        base = try Sys.map(fd, size: size, writable: writable, populate: true)
        self.size = size
    }

    deinit { Sys.unmap(base, size: size) }
}
