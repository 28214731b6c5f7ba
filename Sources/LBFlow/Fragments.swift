// IP fragment reassembly, as Zeek does before connection analysis (its FragReassembler): the
// datagram is analysed once, when its last missing piece arrives, as one packet of its full
// length. lb keeps every fragment of a datagram on one ring, so a worker sees them all.
//
// Memory is fixed: `slots` datagrams of up to 64 KiB each in one allocation, made once.
// A datagram waiting longer than `timeout` of packet time, or the oldest one when all slots are
// taken, is dropped and counted.

final class FragmentReassembler {
    static let maxPayload = 65536
    static let headerRoom = 64
    static let bitmapBytes = maxPayload / 8 / 8         // one bit per 8-byte block
    let slots: Int
    let timeout: UInt64
    let pool: UnsafeMutableRawPointer                   // per slot: header room + payload
    let bitmaps: UnsafeMutablePointer<UInt8>
    var keys: [Key]
    var used: [Bool]
    var firstSeen: [UInt64]
    var total: [Int]                                    // payload length once the last fragment is seen, else -1
    var headerLen: [Int]                                // 0 until the first fragment is seen
    var received: [Int]                                 // payload bytes covered so far
    /// the datagram just completed (IP header + payload), valid until the next `offer`
    let scratch: UnsafeMutableRawPointer
    var dropped: UInt64 = 0

    struct Key: Equatable {
        var src: IPAddr, dst: IPAddr, id: UInt32, proto: UInt8, v6: Bool
    }

    init(slots: Int = 64, timeout: UInt64 = 60_000_000_000) {
        self.slots = slots
        self.timeout = timeout
        let stride = Self.headerRoom + Self.maxPayload
        pool = .allocate(byteCount: slots * stride, alignment: 64)
        bitmaps = .allocate(capacity: slots * Self.bitmapBytes)
        scratch = .allocate(byteCount: stride, alignment: 64)
        let zero = Key(src: IPAddr(hi: 0, lo: 0), dst: IPAddr(hi: 0, lo: 0), id: 0, proto: 0, v6: false)
        keys = Array(repeating: zero, count: slots)
        used = Array(repeating: false, count: slots)
        firstSeen = Array(repeating: 0, count: slots)
        total = Array(repeating: -1, count: slots)
        headerLen = Array(repeating: 0, count: slots)
        received = Array(repeating: 0, count: slots)
    }

    deinit {
        pool.deallocate()
        bitmaps.deallocate()
        scratch.deallocate()
    }

    /// Adds a fragment; returns the length of the complete datagram in `scratch` when this one
    /// completed it (its IP header starts at offset 0), else nil.
    func offer(_ bytes: UnsafeRawBufferPointer, l3: Int, _ p: FlowPacket) -> Int? {
        let key = Key(src: p.src, dst: p.dst, id: p.fragID, proto: p.proto, v6: p.isV6)
        var slot = -1
        var free = -1
        var oldest = 0
        for i in 0..<slots {
            if used[i] {
                if p.ts &- firstSeen[i] > timeout && p.ts > firstSeen[i] { release(i); dropped &+= 1; if free < 0 { free = i }; continue }
                if keys[i] == key { slot = i; break }
                if firstSeen[i] < firstSeen[oldest] || !used[oldest] { oldest = i }
            } else if free < 0 {
                free = i
            }
        }
        if slot < 0 {
            if free < 0 { release(oldest); dropped &+= 1; free = oldest }
            slot = free
            used[slot] = true
            keys[slot] = key
            firstSeen[slot] = p.ts
            total[slot] = -1
            headerLen[slot] = 0
            received[slot] = 0
            (bitmaps + slot * Self.bitmapBytes).initialize(repeating: 0, count: Self.bitmapBytes)
        }
        let end = p.fragOffset + p.fragDataLen
        guard end <= Self.maxPayload, p.fragDataLen > 0 || !p.fragMore else { release(slot); dropped &+= 1; return nil }
        let base = pool + slot * (Self.headerRoom + Self.maxPayload)
        if p.fragOffset == 0 {
            headerLen[slot] = p.isV6 ? 40 : p.fragHeaderLen
            (base + Self.headerRoom - headerLen[slot]).copyMemory(from: bytes.baseAddress! + l3, byteCount: headerLen[slot])
        }
        if p.fragDataLen > 0 {
            (base + Self.headerRoom + p.fragOffset).copyMemory(from: bytes.baseAddress! + p.fragDataOffset, byteCount: p.fragDataLen)
        }
        // mark the 8-byte blocks covered (a last fragment's tail may be partial)
        let bm = bitmaps + slot * Self.bitmapBytes
        var block = p.fragOffset / 8
        let lastBlock = (end + 7) / 8
        while block < lastBlock {
            let byte = block >> 3, bit = UInt8(1) << UInt8(block & 7)
            if bm[byte] & bit == 0 { bm[byte] |= bit; received[slot] += 8 }
            block += 1
        }
        if !p.fragMore { total[slot] = end }
        let t = total[slot]
        guard t >= 0, headerLen[slot] > 0, received[slot] >= (t + 7) / 8 * 8 else { return nil }
        // complete: header + payload into scratch
        let h = headerLen[slot]
        scratch.copyMemory(from: base + Self.headerRoom - h, byteCount: h)
        scratch.advanced(by: h).copyMemory(from: base + Self.headerRoom, byteCount: t)
        if p.isV6 {
            scratch.storeBytes(of: UInt16(t).bigEndian, toByteOffset: 4, as: UInt16.self)
            scratch.storeBytes(of: p.proto, toByteOffset: 6, as: UInt8.self)
        } else {
            scratch.storeBytes(of: UInt16(h + t).bigEndian, toByteOffset: 2, as: UInt16.self)
            scratch.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
            scratch.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
            let sum = fold(onesSum(UnsafeRawBufferPointer(start: scratch, count: h), 0, h))
            scratch.storeBytes(of: (~sum).bigEndian, toByteOffset: 10, as: UInt16.self)
        }
        release(slot)
        return h + t
    }

    func release(_ i: Int) { used[i] = false }
}
