import CLBRing

/// The sizes of one ring: how many descriptors, how many packet bytes, how many lanes.
public struct RingGeometry: Equatable, Sendable {
    /// descriptors per lane (a power of two)
    public var slots: Int
    /// bytes of packet data per lane (a power of two, at least two of the largest records)
    public var dataBytes: Int
    /// longest packet stored; longer ones are truncated and flagged
    public var maxCaplen: Int
    /// producer threads writing into the ring (one lane each)
    public var lanes: Int

    /// The longest packet kept whole is 65535 bytes: captures taken on hosts with GRO/TSO hold
    /// segments of up to 64 kB, which Zeek reads whole; cut to a smaller slot they would be
    /// content gaps to every worker (records take only the bytes a packet has).
    public static let `default` = RingGeometry(slots: 32768, dataBytes: 16 << 20, maxCaplen: 65535, lanes: 1)

    public init(slots: Int, dataBytes: Int, maxCaplen: Int, lanes: Int) {
        self.slots = slots
        self.dataBytes = dataBytes
        self.maxCaplen = maxCaplen
        self.lanes = lanes
    }

    /// Bytes one record takes at most: tunnel info, the packet, rounded up to a cache line.
    public var maxRecord: Int { Int(LB_CACHELINE) + (maxCaplen + 63) & ~63 }

    /// Why these sizes cannot work, or nil.
    public var problem: String? {
        if slots < 64 || slots > 1 << 24 || slots & (slots - 1) != 0 {
            return "--ring-slots must be a power of two from 64 to 16777216 (got \(slots))"
        }
        if maxCaplen < 64 || maxCaplen > 65535 + 64 {
            return "--slot-size must be between 64 and 65599 bytes (got \(maxCaplen))"
        }
        if dataBytes & (dataBytes - 1) != 0 || dataBytes < 2 * maxRecord || dataBytes > 1 << 34 {
            return "--ring-size must be a power of two of at least \(2 * maxRecord) bytes (two of the largest packets) and at most 16G (got \(dataBytes))"
        }
        if lanes < 1 || lanes > Int(LB_MAX_LANES) { return "a ring has 1 to \(LB_MAX_LANES) lanes (got \(lanes))" }
        return nil
    }

    static func pageRound(_ n: Int) -> Int { (n + Int(LB_PAGE) - 1) / Int(LB_PAGE) * Int(LB_PAGE) }

    /// Offset of lane 0 in the DATA region (the info block has the first page).
    public var laneOffset: Int { Int(LB_PAGE) }
    /// Within a lane: the header page, then the descriptors, then the packet bytes.
    public var descOffset: Int { Int(LB_PAGE) }
    public var dataOffset: Int { Self.pageRound(descOffset + slots * MemoryLayout<lb_desc>.size) }
    public var laneStride: Int { Self.pageRound(dataOffset + dataBytes) }
    public var dataRegionSize: Int { laneOffset + lanes * laneStride }
    public var controlRegionSize: Int { Self.pageRound(Int(LB_CONTROL_LANES) + lanes * MemoryLayout<lb_lane_control>.size) }
}
