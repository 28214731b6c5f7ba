/// Writes the 14-byte Ethernet header the decoder asked for (`synthType != 0`): destination
/// and source MAC from the frame where known, zeros otherwise, then the EtherType.
public enum EthernetHeader {
    @inlinable @inline(__always)
    public static func write(to dst: UnsafeMutableRawPointer, frame: UnsafeRawBufferPointer, decoded d: Decoded) {
        if d.synthDst >= 0 && d.synthDst + 6 <= frame.count {
            dst.copyMemory(from: frame.baseAddress! + d.synthDst, byteCount: 6)
        } else {
            dst.storeBytes(of: UInt32(0), toByteOffset: 0, as: UInt32.self)
            dst.storeBytes(of: UInt16(0), toByteOffset: 4, as: UInt16.self)
        }
        if d.synthSrc >= 0 && d.synthSrc + 6 <= frame.count {
            (dst + 6).copyMemory(from: frame.baseAddress! + d.synthSrc, byteCount: 6)
        } else {
            dst.storeBytes(of: UInt32(0), toByteOffset: 6, as: UInt32.self)
            dst.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
        }
        dst.storeBytes(of: d.synthType.bigEndian, toByteOffset: 12, as: UInt16.self)
    }
}
