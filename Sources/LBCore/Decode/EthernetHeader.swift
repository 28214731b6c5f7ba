/// Writes the 14-byte Ethernet header the decoder asked for (`synthType != 0`): destination
/// and source MAC from the frame where known, zeros otherwise, then the EtherType.
public enum EthernetHeader {
    @inlinable @inline(__always)
    public static func write(to dst: UnsafeMutableRawPointer, frame: UnsafeRawBufferPointer, decoded d: Decoded) {
        write(to: dst, frame: frame, type: d.synthType, dst: d.synthDst, src: d.synthSrc)
    }

    /// The same from the three fields: EtherType, and the offsets of the MACs (-1: zeros).
    @inlinable @inline(__always)
    public static func write(to out: UnsafeMutableRawPointer, frame: UnsafeRawBufferPointer, type: UInt16, dst: Int, src: Int) {
        if dst >= 0 && dst + 6 <= frame.count {
            out.copyMemory(from: frame.baseAddress! + dst, byteCount: 6)
        } else {
            out.storeBytes(of: UInt32(0), toByteOffset: 0, as: UInt32.self)
            out.storeBytes(of: UInt16(0), toByteOffset: 4, as: UInt16.self)
        }
        if src >= 0 && src + 6 <= frame.count {
            (out + 6).copyMemory(from: frame.baseAddress! + src, byteCount: 6)
        } else {
            out.storeBytes(of: UInt32(0), toByteOffset: 6, as: UInt32.self)
            out.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
        }
        out.storeBytes(of: type.bigEndian, toByteOffset: 12, as: UInt16.self)
    }
}
