// Big-endian, unaligned loads from packet bytes.
//
// Every caller checks the header's length once (`guard end - off >= N`) before it loads from
// that header, so these loads are unchecked in release builds. Debug builds keep the standard
// library's bounds precondition, and the fuzz test runs under the address sanitizer, so a
// missing length check shows up as a test failure, never as a silent out-of-bounds read.

extension UnsafeRawBufferPointer {
    @inlinable @inline(__always)
    func u8(_ offset: Int) -> UInt8 {
        load(fromByteOffset: offset, as: UInt8.self)
    }

    @inlinable @inline(__always)
    func be16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable @inline(__always)
    func be32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inlinable @inline(__always)
    func be64(_ offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inlinable @inline(__always)
    func le16(_ offset: Int) -> UInt16 {
        UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable @inline(__always)
    func le32(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// A 48-bit MAC address as an integer (first byte most significant).
    @inlinable @inline(__always)
    func mac(_ offset: Int) -> UInt64 {
        UInt64(be32(offset)) << 16 | UInt64(be16(offset + 4))
    }
}
