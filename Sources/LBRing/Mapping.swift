import LBSys

/// A file descriptor that closes itself.
public struct OwnedFD: ~Copyable {
    public let raw: Int32
    public init(_ raw: Int32) { self.raw = raw }
    deinit { Sys.close(raw) }
}

/// A shared mapping that unmaps itself.
public struct Mapping: ~Copyable {
    public let base: UnsafeMutableRawPointer
    public let size: Int

    public init(fd: Int32, size: Int, writable: Bool) throws(SysError) {
        base = try Sys.map(fd, size: size, writable: writable)
        self.size = size
    }

    deinit { Sys.unmap(base, size: size) }
}
