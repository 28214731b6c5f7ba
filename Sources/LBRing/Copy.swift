/// Copies packet bytes into a ring. Most packets are small; for up to 128 bytes two pairs of
/// overlapping unaligned vector moves beat a call to memcpy; larger copies use memcpy.
@inlinable @inline(__always)
public func copyPacketBytes(to dst: UnsafeMutableRawPointer, from src: UnsafeRawPointer, count n: Int) {
    if n >= 16 && n <= 128 {
        if n <= 32 {
            let a = src.loadUnaligned(as: SIMD16<UInt8>.self)
            let b = src.loadUnaligned(fromByteOffset: n &- 16, as: SIMD16<UInt8>.self)
            dst.storeBytes(of: a, as: SIMD16<UInt8>.self)
            dst.storeBytes(of: b, toByteOffset: n &- 16, as: SIMD16<UInt8>.self)
        } else if n <= 64 {
            let a = src.loadUnaligned(as: SIMD32<UInt8>.self)
            let b = src.loadUnaligned(fromByteOffset: n &- 32, as: SIMD32<UInt8>.self)
            dst.storeBytes(of: a, as: SIMD32<UInt8>.self)
            dst.storeBytes(of: b, toByteOffset: n &- 32, as: SIMD32<UInt8>.self)
        } else {
            let a = src.loadUnaligned(as: SIMD64<UInt8>.self)
            let b = src.loadUnaligned(fromByteOffset: n &- 64, as: SIMD64<UInt8>.self)
            dst.storeBytes(of: a, as: SIMD64<UInt8>.self)
            dst.storeBytes(of: b, toByteOffset: n &- 64, as: SIMD64<UInt8>.self)
        }
    } else if n > 0 {
        dst.copyMemory(from: src, byteCount: n)
    }
}
