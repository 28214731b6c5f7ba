/// lb's status at one moment, taken in one place (`Operations.snapshot`) and rendered by every
/// view: the `-o` JSON lines, `lb stats` (text and `--json`), Prometheus, `lb check`. Plain
/// values, `Codable` with snake_case keys: a client reads lb's answer back with `JSONDecoder`,
/// and a view that forgets a field is caught by the parity test,
/// which derives the field list from these types.
public struct StatusSnapshot: Codable, Sendable, Equatable {
    /// wall-clock time of the snapshot, seconds since 1970
    public var ts: Double
    public var lb: LBStatus
    public var rings: [RingStatus]

    public init(ts: Double, lb: LBStatus, rings: [RingStatus]) {
        self.ts = ts; self.lb = lb; self.rings = rings
    }

    enum CodingKeys: String, CodingKey {
        case ts
        case lb
        case rings
    }
}

/// Counts by name (tunnels by kind, parse failures by reason ...), in a fixed order. Encoded as
/// an object `{"vxlan": 3, ...}`.
public struct NamedCounts: Codable, Sendable, Equatable {
    public var items: [(name: String, count: UInt64)]

    public init(_ items: [(String, UInt64)]) { self.items = items.map { (name: $0.0, count: $0.1) } }

    public subscript(name: String) -> UInt64? { items.first { $0.name == name }?.count }

    public static func == (a: NamedCounts, b: NamedCounts) -> Bool {
        a.items.count == b.items.count && zip(a.items, b.items).allSatisfy { $0.name == $1.name && $0.count == $1.count }
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        for i in items { try c.encode(i.count, forKey: Key(stringValue: i.name)) }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        // JSONDecoder does not keep the order of an object's keys: by name, then
        items = try c.allKeys.map { (name: $0.stringValue, count: try c.decode(UInt64.self, forKey: $0)) }
            .sorted { $0.name < $1.name }
    }
}

/// lb as a whole. The first fields are netmap lb's (`interface`, `packets_received`,
/// `packets_forwarded`, `packets_dropped`, `non_ip_packets`); the rest are lb's own.
public struct LBStatus: Codable, Sendable, Equatable {
    /// the input, as named on the command line (`pcap:x.pcap`, `af_xdp:eth1`, `udp::...`)
    public var interface: String
    public var packetsReceived: UInt64 = 0, packetsForwarded: UInt64 = 0, packetsDropped: UInt64 = 0, nonIpPackets: UInt64 = 0
    public var pid: Int = 0, uptimeSeconds: Double = 0
    public var bytesReceived: UInt64 = 0, bytesForwarded: UInt64 = 0
    /// packets that did not parse fully (delivered, hashed on what was read), packets longer
    /// than a slot (truncated), 802.11 A-MSDU subframes delivered as packets of their own,
    /// consumer tails out of range (ignored by lb)
    public var packetsUnparsed: UInt64 = 0, packetsTruncated: UInt64 = 0, amsduSubframes: UInt64 = 0, consumerProtocolErrors: UInt64 = 0
    /// nil: failover off
    public var failoverAfterSeconds: Double? = nil
    /// buckets moved by failover (away and back), per group
    public var failoverBucketMoves = NamedCounts([])
    /// tunnels removed, by kind
    public var decapsulated = NamedCounts([])
    /// packets that did not parse, by reason
    public var unparsed = NamedCounts([])
    /// the fragment table's counters
    public var fragments = NamedCounts([])
    /// the `udp::` ingress (nil for other inputs)
    public var udp: UDPStatus? = nil
    /// the live ingress: AF_XDP or AF_PACKET (nil for other inputs)
    public var ingress: IngressStatus? = nil
    /// Prometheus requests answered (nil: no --metrics)
    public var metricsScrapes: UInt64? = nil
    /// bytes of the capture file not read: a damaged or truncated record ended the replay
    /// there (0 when it was read to its end; nil for live inputs)
    public var inputUnreadBytes: UInt64? = nil
    /// shunting, per group: flows in the table now, added, refused (table full), ended by a
    /// timeout, removed by a request, and ended in all (final counts reported)
    public var shuntEntries = NamedCounts([]), shuntAdded = NamedCounts([]), shuntRefused = NamedCounts([])
    public var shuntExpired = NamedCounts([]), shuntRemoved = NamedCounts([]), shuntEnded = NamedCounts([])
    /// shunt requests refused, by reason (malformed, unknown_group, busy, no_answer)
    public var shuntRequestsRefused = NamedCounts([])
    /// flows lb's XDP program drops now (shunted in every group, no tap), and flows put into it
    /// so far (nil: the input has no XDP program)
    public var shuntXDPFlows: UInt64? = nil
    public var shuntXDPAdded: UInt64? = nil
    /// --tenant-tag: packets given a tenant tag, of them with a tunnel id folded into a VLAN
    /// id (no --tenant-map entry), and with a VLAN id another tunnel id had (nil: no tag)
    public var tenantTagged: UInt64? = nil, tenantFolded: UInt64? = nil, tenantCollisions: UInt64? = nil
    /// forwarded groups' members (docs/scale-out.md), by ring name: datagrams over the path MTU
    /// (sent fragmented by the kernel), packets that could not be sent, times the member went down
    public var forwardFragmented = NamedCounts([]), forwardSendErrors = NamedCounts([]), forwardDowns = NamedCounts([])
    /// --dedup: the window in seconds, and packets dropped as copies of one seen less than
    /// the window earlier (nil: dedup off)
    public var dedupWindowSeconds: Double? = nil
    public var packetsDeduplicated: UInt64? = nil

    public init(interface: String) { self.interface = interface }

    enum CodingKeys: String, CodingKey {
        case interface
        case packetsReceived = "packets_received"
        case packetsForwarded = "packets_forwarded"
        case packetsDropped = "packets_dropped"
        case nonIpPackets = "non_ip_packets"
        case pid
        case uptimeSeconds = "uptime_seconds"
        case bytesReceived = "bytes_received"
        case bytesForwarded = "bytes_forwarded"
        case packetsUnparsed = "packets_unparsed"
        case packetsTruncated = "packets_truncated"
        case amsduSubframes = "amsdu_subframes"
        case consumerProtocolErrors = "consumer_protocol_errors"
        case failoverAfterSeconds = "failover_after_seconds"
        case failoverBucketMoves = "failover_bucket_moves"
        case decapsulated
        case unparsed
        case fragments
        case udp
        case ingress
        case metricsScrapes = "metrics_scrapes"
        case inputUnreadBytes = "input_unread_bytes"
        case shuntEntries = "shunt_entries"
        case shuntAdded = "shunt_added"
        case shuntRefused = "shunt_refused"
        case shuntExpired = "shunt_expired"
        case shuntRemoved = "shunt_removed"
        case shuntEnded = "shunt_ended"
        case shuntRequestsRefused = "shunt_requests_refused"
        case shuntXDPFlows = "shunt_xdp_flows"
        case shuntXDPAdded = "shunt_xdp_added"
        case tenantTagged = "tenant_tagged"
        case tenantFolded = "tenant_folded"
        case tenantCollisions = "tenant_collisions"
        case forwardFragmented = "forward_fragmented"
        case forwardSendErrors = "forward_send_errors"
        case forwardDowns = "forward_downs"
        case dedupWindowSeconds = "dedup_window_seconds"
        case packetsDeduplicated = "packets_deduplicated"
    }
}

/// One ring. The first fields are netmap lb's; then lb's counters, the consumer as lb sees it,
/// the worker's own report (untrusted: shown raw, derived values clamped, see
/// `WorkerReportFields`) and failover.
public struct RingStatus: Codable, Sendable, Equatable {
    /// the ring's name, `group:index`
    public var interface: String
    /// the ring's number across all groups
    public var outputRing: Int
    public var packetsForwarded: UInt64 = 0, packetsDropped: UInt64 = 0
    public var group: String, ring: Int
    /// bytes written; packets dropped by reason (their sum is `packetsDropped`); truncated to a slot
    public var bytesForwarded: UInt64 = 0, droppedRingFull: UInt64 = 0, droppedNoConsumer: UInt64 = 0, droppedStalled: UInt64 = 0
    public var truncated: UInt64 = 0
    /// packets (and bytes) that would have come to this ring but were shunted
    public var shuntedPackets: UInt64 = 0, shuntedBytes: UInt64 = 0
    /// packets that would have come to this ring but its group's filter rejected; packets cut
    /// to the group's slice length
    public var filteredPackets: UInt64 = 0, slicedPackets: UInt64 = 0
    /// packets written and not yet released by the consumer
    public var backlog: UInt64 = 0
    /// descriptors of the ring (all lanes)
    public var slots: Int = 0
    /// attached, stalled (a replay gave up waiting for it) or detached
    public var consumer: String = "detached"
    public var consumerPid: Int? = nil, consumerAttaches: UInt64 = 0
    /// seconds the consumer has had packets waiting and released none (0: it keeps up)
    public var consumerStuckSeconds: Double = 0
    /// seconds since the consumer left (0 while attached)
    public var consumerDetachedSeconds: Double = 0
    /// the worker's `processed` (older name of `packets_processed_by_worker`)
    public var consumerPacketsProcessed: UInt64 = 0
    public var packetsProcessedByWorker: UInt64 = 0, workerLossGaps: UInt64 = 0, workerLossAcks: UInt64 = 0
    /// 100 * gaps / acks, clamped to 0...100; nil while acks == 0
    public var workerLossPercent: Double? = nil
    /// seconds since the worker's last report; nil if it never reported
    public var workerReportAgeS: Double? = nil
    public var workerReportPid: Int? = nil
    /// the report cannot be right (more gaps than acks, more processed than forwarded, a time
    /// in the future)
    public var workerReportSuspect: Bool = false
    /// hash buckets (of 4096) the ring holds now
    public var buckets: Int = 0
    /// failover has moved the ring's buckets away
    public var failedOver: Bool = false
    public var failovers: UInt64 = 0

    public init(interface: String, outputRing: Int, group: String, ring: Int) {
        self.interface = interface; self.outputRing = outputRing; self.group = group; self.ring = ring
    }

    public var attached: Bool { consumer != "detached" }

    enum CodingKeys: String, CodingKey {
        case interface
        case outputRing = "output_ring"
        case packetsForwarded = "packets_forwarded"
        case packetsDropped = "packets_dropped"
        case group
        case ring
        case bytesForwarded = "bytes_forwarded"
        case droppedRingFull = "dropped_ring_full"
        case droppedNoConsumer = "dropped_no_consumer"
        case droppedStalled = "dropped_stalled"
        case truncated
        case shuntedPackets = "shunted_packets"
        case shuntedBytes = "shunted_bytes"
        case filteredPackets = "filtered_packets"
        case slicedPackets = "sliced_packets"
        case backlog
        case slots
        case consumer
        case consumerPid = "consumer_pid"
        case consumerAttaches = "consumer_attaches"
        case consumerStuckSeconds = "consumer_stuck_seconds"
        case consumerDetachedSeconds = "consumer_detached_seconds"
        case consumerPacketsProcessed = "consumer_packets_processed"
        case packetsProcessedByWorker = "packets_processed_by_worker"
        case workerLossGaps = "worker_loss_gaps"
        case workerLossAcks = "worker_loss_acks"
        case workerLossPercent = "worker_loss_percent"
        case workerReportAgeS = "worker_report_age_s"
        case workerReportPid = "worker_report_pid"
        case workerReportSuspect = "worker_report_suspect"
        case buckets
        case failedOver = "failed_over"
        case failovers
    }
}

/// The `udp::` ingress's counters.
public struct UDPStatus: Codable, Sendable, Equatable {
    public var datagramsReceived: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    public var datagramsAccepted: UInt64 = 0
    public var datagramsRejected: UInt64 = 0
    /// rejections by reason
    public var rejected = NamedCounts([])
    /// datagrams the kernel dropped (socket buffer full)
    public var kernelDrops: UInt64 = 0
    public var receiveErrors: UInt64 = 0
    /// keepalives of a forwarding lb answered (not packets: docs/scale-out.md)
    public var keepalivesAnswered: UInt64 = 0
    public var rcvbufRequested: UInt64 = 0
    public var rcvbufGranted: UInt64 = 0
    /// VNIs seen (tracked), and packets of VNIs past the table's capacity
    public var vniCount: UInt64 = 0
    public var vniOther: UInt64 = 0
    /// the VNIs with the most packets
    public var vniTop: [VNICount] = []

    public init() {}

    enum CodingKeys: String, CodingKey {
        case datagramsReceived = "datagrams_received"
        case bytesReceived = "bytes_received"
        case datagramsAccepted = "datagrams_accepted"
        case datagramsRejected = "datagrams_rejected"
        case rejected
        case kernelDrops = "kernel_drops"
        case receiveErrors = "receive_errors"
        case keepalivesAnswered = "keepalives_answered"
        case rcvbufRequested = "rcvbuf_requested"
        case rcvbufGranted = "rcvbuf_granted"
        case vniCount = "vni_count"
        case vniOther = "vni_other"
        case vniTop = "vni_top"
    }
}

public struct VNICount: Codable, Sendable, Equatable {
    public var vni: UInt32
    public var packets: UInt64
    public var bytes: UInt64
    public init(vni: UInt32, packets: UInt64, bytes: UInt64) { self.vni = vni; self.packets = packets; self.bytes = bytes }

    enum CodingKeys: String, CodingKey {
        case vni
        case packets
        case bytes
    }
}

/// The live ingress (AF_XDP or AF_PACKET): where packets were lost before lb read them.
public struct IngressStatus: Codable, Sendable, Equatable {
    public var source: String
    /// native, generic (XDP attach mode) or af_packet
    public var mode: String
    public var zeroCopy: Bool
    public var queues: Int
    /// packets taken per RX queue
    public var queuePackets = NamedCounts([])
    /// the interface's own counters (/sys/class/net/IFACE/statistics)
    public var interfaceCounters = NamedCounts([])
    /// lb's XDP program (nil for AF_PACKET)
    public var xdp: NamedCounts? = nil
    /// the AF_XDP sockets' counters, all queues (nil for AF_PACKET)
    public var xsk: NamedCounts? = nil
    /// the TPACKET ring's counters (nil for AF_XDP)
    public var afPacket: NamedCounts? = nil

    public init(source: String, mode: String, zeroCopy: Bool, queues: Int) {
        self.source = source; self.mode = mode; self.zeroCopy = zeroCopy; self.queues = queues
    }

    enum CodingKeys: String, CodingKey {
        case source
        case mode
        case zeroCopy = "zero_copy"
        case queues
        case queuePackets = "queue_packets"
        case interfaceCounters = "interface_counters"
        case xdp
        case xsk
        case afPacket = "af_packet"
    }
}
