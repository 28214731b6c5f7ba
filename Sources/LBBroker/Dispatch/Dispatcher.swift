import CLBRing
import LBCore
import LBRing
import LBSys
import Synchronization

/// How the data path behaves.
public struct DispatchConfig: Sendable {
    public var decode = DecodeConfig()
    /// wait for a full ring's consumer instead of dropping (capture-file replay)
    public var backpressure = false
    /// how long a consumer may make no progress before lb stops waiting for it
    public var stallTimeoutNanos: UInt64 = 30_000_000_000
    public var fragments = FragmentTable.Limits()
    /// frames taken from the source at a time
    public var batch = 64
    /// Live sources: make new packets visible to the consumers (and wake them) only once this
    /// many have gathered since the last time, or `publishDelayNanos` after the first of them,
    /// or when the source goes idle. A consumer woken for every packet or two costs a futex wake
    /// and a context switch each time, more than the packet itself (TPACKET_V3 batches the same
    /// way with its block timeout). A short batch (the source is drained and will sleep next)
    /// is published at once. 1: after every batch from the source (capture replay).
    public var publishBatch = 1
    public var publishDelayNanos: UInt64 = 0
    /// the most flows each group's shunt table holds (allocated at the first shunt request)
    public var shuntCapacity = 65536
    /// at the end of `run`, end every shunt and report it (lb's one run per input); a benchmark
    /// that calls `run` again and again keeps them
    public var endShuntsAtEnd = true
    /// per group (in group order): its filter and slice length (docs/policy.md)
    public var policies: [GroupPolicy] = []
    /// the tenant tag every delivered packet of a tunnel gets (nil: none)
    public var tenantTag: TenantTag? = nil
    /// groups whose members are other hosts or ports (docs/scale-out.md): their buckets come
    /// from other bits of the hash than rings' do, so that an lb fed by such a member, hashing
    /// alike, still spreads what it gets over all its buckets
    public var forwardedGroups: Set<Int> = []
    public init() {}
}

/// Bucket → ring for one group. Buckets are the top 12 bits of the flow hash (bits 20 to 31
/// for a forwarded group, independent of the top ones: `shift`).
/// The entries may be shared with the control thread (`BucketTables`, failover), which moves
/// buckets with relaxed atomic stores; the data path only loads them.
public struct IndirectionTable {
    public static let bits = 12
    public static let size = 1 << bits
    let entries: UnsafeMutablePointer<Atomic<UInt16>>
    /// false when the entries belong to a `BucketTables`
    let owned: Bool
    public let firstRing: Int
    public let ringCount: Int
    /// where the bucket's bits start in the hash
    let shift: UInt64

    /// The bits of the hash a bucket is taken from: the top ones, or for a forwarded group
    /// bits 20 to 31.
    public static func shift(forwarded: Bool) -> UInt64 { forwarded ? 20 : UInt64(64 - bits) }

    init(firstRing: Int, ringCount: Int, shift: UInt64 = UInt64(64 - IndirectionTable.bits)) {
        self.firstRing = firstRing
        self.ringCount = ringCount
        self.shift = shift
        entries = .allocate(capacity: Self.size)
        for b in 0..<Self.size { (entries + b).initialize(to: Atomic(UInt16(b % ringCount))) }
        owned = true
    }

    /// A view of group `g` of shared tables.
    init(firstRing: Int, shared: BucketTables, group g: Int, shift: UInt64 = UInt64(64 - IndirectionTable.bits)) {
        self.firstRing = firstRing
        self.shift = shift
        ringCount = shared.ringCount[g]
        entries = shared.table(g)
        owned = false
    }

    /// The global index of the ring that gets flows with this hash.
    @inline(__always)
    func ring(for hash: UInt64) -> Int {
        firstRing &+ Int(truncatingIfNeeded: entries[Int(truncatingIfNeeded: (hash >> shift) & UInt64(Self.size - 1))].load(ordering: .relaxed))
    }
}

/// The data path: frames in, decoded, hashed, written into one ring of every group.
///
/// Owns everything it touches per packet (decoder, fragment table, the producer end of every
/// ring, the indirection tables), so the loop takes no lock, allocates nothing and calls no
/// existential. One instance per data-path thread.
///
/// Calls on self: a method that is not `mutating` and not inlined, called from a `mutating`
/// one, gets a copy of the whole dispatcher (about 880 bytes, memcpy'd, then read back at a
/// store-forwarding stall): per packet that cost a filter 30 to 90 ns. Data-path methods that
/// are not inlined are therefore `mutating` even when they change nothing; `objdump -d` of the
/// release build shows no `mov $0x372,%edx; call memcpy` in the data path (only at setup).
public struct Dispatcher: ~Copyable {
    /// the decoder, held out of line so that calling it never copies it
    let decoder: UnsafeMutablePointer<Decoder>
    var fragments: FragmentTable
    let producers: UnsafeMutablePointer<LaneProducer>
    let ringCount: Int
    let tables: UnsafeMutablePointer<IndirectionTable>
    let groupCount: Int
    let shared: SharedState
    let counters: Counters
    /// `shared`'s attached flags and `counters`' per-ring block, held for the per-packet path
    let attached: UnsafeMutablePointer<Atomic<UInt32>>
    let ringCounters: UnsafeMutablePointer<Atomic<UInt64>>
    let maxCaplen: Int
    let keep: Bool
    let backpressure: Bool
    let stallTimeout: UInt64
    let batch: Int
    let publishBatch: Int
    let publishDelay: UInt64
    let frames: UnsafeMutablePointer<Frame>
    /// where each frame is decoded (a `Decoded` is ~200 bytes: decoded in place, not returned)
    let scratch: UnsafeMutablePointer<Decoded>
    /// where a packet the fragment table releases is put for delivery
    let readyScratch: UnsafeMutablePointer<Decoded>
    /// per frame of a batch: what the fast path found and decided
    let fastNotes: UnsafeMutablePointer<FastNote>
    var lastTimestamp: UInt64 = 0
    /// the link type the fast path takes (Ethernet), or none (`useFastPath` off)
    var fastLinkType = LinkType.ethernet.rawValue
    /// off only in tests, to compare the fast path's deliveries with the general path's
    var useFastPath: Bool {
        get { fastLinkType == LinkType.ethernet.rawValue }
        set { fastLinkType = newValue ? LinkType.ethernet.rawValue : .max }
    }
    var lastLinkRaw: UInt32 = .max
    var lastLink: LinkType? = nil
    /// the rings the producers point into; held so they live as long as the dispatcher
    let owners: [[RingMemory]]
    /// shunting (Dispatcher+Shunt.swift): requests come through the channel; one table per
    /// group, made at the first request; `shuntActive` while any table holds an entry
    let shuntChannel: ShuntChannel?
    var shuntTables: UnsafeMutablePointer<ShuntTable>? = nil
    var shuntActive = false
    let shuntCapacity: Int
    let endShuntsAtEnd: Bool
    let hashVNI: Bool
    let hashVLAN: Bool
    /// per-group filters and slices, and the tenant tag (Dispatcher+Policy.swift)
    let policy: PolicyState
    let policyActive: Bool

    /// `groups` lists, per group, its rings' memory in ring order. A dispatcher writes into
    /// `lane` of every ring and counts into `counters` (default: the shared ones); several
    /// data-path threads each use their own lane and their own counters.
    public init(config: DispatchConfig, groups: [[RingMemory]], shared: SharedState, lane: Int = 0, counters: Counters? = nil) {
        let dec = Decoder(config.decode)
        decoder = .allocate(capacity: 1)
        decoder.initialize(to: dec)
        fragments = FragmentTable(decoder: dec, limits: config.fragments)
        ringCount = groups.reduce(0) { $0 + $1.count }
        producers = .allocate(capacity: ringCount)
        tables = .allocate(capacity: groups.count)
        var r = 0
        for (g, rings) in groups.enumerated() {
            let shift = IndirectionTable.shift(forwarded: config.forwardedGroups.contains(g))
            if let b = shared.buckets, g < b.groupCount, b.ringCount[g] == rings.count {
                (tables + g).initialize(to: IndirectionTable(firstRing: r, shared: b, group: g, shift: shift))
            } else {
                (tables + g).initialize(to: IndirectionTable(firstRing: r, ringCount: rings.count, shift: shift))
            }
            for m in rings {
                (producers + r).initialize(to: m.producer(lane: lane))
                r += 1
            }
        }
        groupCount = groups.count
        self.shared = shared
        self.counters = counters ?? shared.counters
        attached = shared.attached
        ringCounters = self.counters.block + Counters.ringBase
        maxCaplen = groups.first?.first?.geometry.maxCaplen ?? RingGeometry.default.maxCaplen
        keep = config.decode.keepEncapsulation
        backpressure = config.backpressure
        stallTimeout = config.stallTimeoutNanos
        batch = config.batch
        publishBatch = max(1, config.publishBatch)
        publishDelay = config.publishDelayNanos
        frames = .allocate(capacity: config.batch)
        scratch = .allocate(capacity: 1)
        scratch.initialize(to: Decoded())
        readyScratch = .allocate(capacity: 1)
        readyScratch.initialize(to: Decoded())
        fastNotes = .allocate(capacity: config.batch)
        fastNotes.initialize(repeating: FastNote(), count: config.batch)
        owners = groups
        shuntChannel = lane < shared.shuntChannels.count ? shared.shuntChannels[lane] : nil
        shuntCapacity = config.shuntCapacity
        endShuntsAtEnd = config.endShuntsAtEnd
        hashVNI = config.decode.hashVNI
        hashVLAN = config.decode.hashVLAN
        policy = PolicyState(groups: groups.count, policies: config.policies, tenant: config.tenantTag)
        policyActive = config.tenantTag != nil || config.policies.contains { !$0.isDefault }
    }

    deinit {
        for g in 0..<groupCount where tables[g].owned { tables[g].entries.deallocate() }
        tables.deinitialize(count: groupCount)
        tables.deallocate()
        producers.deinitialize(count: ringCount)
        producers.deallocate()
        frames.deallocate()
        scratch.deallocate()
        readyScratch.deallocate()
        fastNotes.deallocate()
        decoder.deallocate()
        policy.free(groups: groupCount)
        if let t = shuntTables {
            t.deinitialize(count: groupCount)
            t.deallocate()
        }
    }

    /// Runs until the source is finished or a stop is requested. At the end every fragment
    /// still held is released and everything written is published.
    @_specialize(exported: true, where S == ReplaySource)
    public mutating func run<S: PacketSource & ~Copyable>(_ source: inout S) {
        // A local, immutable copy made once: a method called on it copies nothing, where one
        // called through the pointer (or a stored property of self) copies the decoder each time.
        let decoder = self.decoder.pointee
        var unpublished = 0                 // packets taken since the last publishAll (live)
        var firstUnpublished: UInt64 = 0    // when the first of them came
        while !shared.stopRequested {
            if let ch = shuntChannel, ch.hasCommands { applyShuntCommands(ch) }
            let n = source.receive(into: frames, max: batch)
            if n == 0 {
                if source.finished { break }
                publishAll()
                unpublished = 0
                continue
            }
            handleBatch(n, decoder)
            if shuntActive { expireShunts() }
            fragments.sweep(now: lastTimestamp)
            drainFragments()
            if publishBatch == 1 {
                publishAll()
            } else {
                let now = Sys.monoNanos()
                if unpublished == 0 { firstUnpublished = now }
                unpublished &+= n
                // a short batch: the source is drained and sleeps next (poll, or a nap)
                if n < batch || unpublished >= publishBatch || now &- firstUnpublished >= publishDelay {
                    publishAll()
                    unpublished = 0
                }
            }
            mirrorFragmentCounters()
        }
        // Stopped: what the socket already holds is taken too (bounded, in case the wire
        // keeps it full), so that lb's final counts cover what the kernel handed it.
        var left = 1 << 20
        while left > 0 {
            let n = source.drain(into: frames, max: batch)
            if n == 0 { break }
            handleBatch(n, decoder)
            left -= n
        }
        fragments.flush()
        drainFragments()
        if endShuntsAtEnd { finishShunts() }
        publishAll()
        mirrorFragmentCounters()
    }

    /// Handles the first n frames and counts them, in two passes over the batch: the first
    /// classifies and hashes every frame the fast path takes and notes its descriptor (in
    /// `fastNotes`), the second delivers every frame in order, by its note or by the general
    /// path. Each pass is a function of its own with few values alive across its loop: one
    /// loop doing everything kept too many alive at once and spilled them (and a call per
    /// packet between the two halves passed them through memory anyway).
    @inline(__always)
    mutating func handleBatch(_ n: Int, _ decoder: Decoder) {
        let bytes = classifyBatch(n, decoder)
        if shared.dedup != nil { dedupBatch(n, decoder) }
        deliverBatch(n, decoder)
        lastTimestamp = frames[n &- 1].timestampNanos
        counters.add(.received, UInt64(n))
        counters.add(.receivedBytes, bytes)
    }

    /// The first pass: for each frame the fast path takes, its descriptor (all but where
    /// it will be) and where its bytes start; returns the bytes on the wire.
    @inline(never)
    mutating func classifyBatch(_ n: Int, _ decoder: Decoder) -> UInt64 {
        var bytes: UInt64 = 0
        for i in 0..<n {
            let fp = UnsafePointer(frames + i)
            bytes &+= UInt64(truncatingIfNeeded: fp.pointee.wireLength)
            let note = fastNotes + i
            let ff = note.pointer(to: \.frame)!
            if fp.pointee.linkType == fastLinkType && decoder.classify(fp.pointee.bytes, into: ff) {
                let hash = decoder.flowHash(UnsafePointer(ff))
                if shuntActive {
                    // shunted in every group: nothing more to do for it (no descriptor, no copy)
                    let skip = shuntMaskFast(fp, UnsafePointer(ff), hash: hash)
                    note.pointee.skip = skip
                    if skip != 0 && skip == allGroups {
                        note.pointee.bytes = nil
                        note.pointee.shunted = true
                        continue
                    }
                }
                describeFast(fp, UnsafePointer(ff), hash: hash, into: note)
            } else {
                note.pointee.bytes = nil
            }
            note.pointee.shunted = false
        }
        return bytes
    }

    /// The second pass: delivers every frame, in order.
    @inline(never)
    mutating func deliverBatch(_ n: Int, _ decoder: Decoder) {
        for i in 0..<n {
            let note = UnsafePointer(fastNotes + i)
            if note.pointee.shunted { continue }
            if let src = note.pointee.bytes {
                deliverFast(note, src)
            } else {
                handleSlow(frames + i, decoder)
            }
        }
    }

    /// Every frame the fast path does not take: the general decode, fragments, subframes.
    @inline(never)
    mutating func handleSlow(_ fp: UnsafePointer<Frame>, _ decoder: Decoder) {
        let f = fp.pointee
        // Frames of a source mostly share one link type: convert only when it changes.
        if f.linkType != lastLinkRaw {
            lastLinkRaw = f.linkType
            lastLink = LinkType(linktype: f.linkType)
        }
        guard let link = lastLink else {
            deliverOpaque(f)
            return
        }
        let d = UnsafePointer(scratch)
        var subframe = 0
        repeat {
            decoder.decode(f.bytes, link: link, subframe: subframe, into: scratch)
            account(d)
            let wire = d.pointee.end == f.bytes.count
                ? d.pointee.end &- d.pointee.start &+ (d.pointee.synthType != 0 ? 14 : 0) &+ max(0, f.wireLength &- f.bytes.count)
                : d.pointee.end &- d.pointee.start &+ (d.pointee.synthType != 0 ? 14 : 0)
            if d.pointee.isFragment {
                switch fragments.offer(d.pointee, frame: f.bytes, timestampNanos: f.timestampNanos, wireLength: f.wireLength) {
                case .deliver(let hash):
                    deliver(f.bytes, d, hash: hash, ts: f.timestampNanos, wire: wire, extraFlags: 0, input: f.input)
                case .held:
                    break
                }
                drainFragments()
            } else {
                deliver(f.bytes, d, hash: decoder.flowHash(d), ts: f.timestampNanos, wire: wire, extraFlags: 0,
                        input: f.input)
            }
            if subframe > 0 { counters.add(.subframes) }
            subframe = d.pointee.nextSubframe
        } while subframe != 0
    }

    @inline(__always)
    func account(_ d: UnsafePointer<Decoded>) {
        // Fields read one by one: `d.pointee` as a whole would copy all of it.
        let mask = d.pointee.encapMask
        if mask != 0 {
            var m = mask
            while m != 0 {
                let bit = m.trailingZeroBitCount
                m &= m &- 1
                if let e = EncapKind(rawValue: UInt8(truncatingIfNeeded: bit)) { counters.add(encap: e) }
            }
        }
        let error = d.pointee.error
        if error != .none {
            counters.add(.unparsed)
            counters.add(error: error)
        }
        if d.pointee.nonIP { counters.add(.nonIP) }
    }

    /// Delivers what the fragment table released.
    @inline(__always)
    mutating func drainFragments() {
        if fragments.hasReady { drainReady() }
    }

    @inline(never)
    mutating func drainReady() {
        while let r = fragments.popReady() {
            var flags: UInt32 = r.synthesized ? LB_F_SYNTH_ETHERNET : 0
            if r.reassembled { flags |= LB_F_REASSEMBLED }
            readyScratch.pointee = r.decoded
            deliver(r.bytes, readyScratch, hash: r.hash, ts: r.timestampNanos, wire: r.wireLength, extraFlags: flags, input: 0)
        }
    }

    mutating func mirrorFragmentCounters() {
        let c = fragments.counters
        counters.set(.fragments, c.fragments)
        counters.set(.fragmentsHeld, c.held)
        counters.set(.fragmentsReassembled, c.reassembled)
        counters.set(.fragmentsMerged, c.merged)
        counters.set(.fragmentsUnmatched, c.unmatched)
        counters.set(.fragmentsIncomplete, c.incomplete)
        counters.set(.fragmentsEvicted, c.evicted)
        counters.set(.fragmentsNotHeld, c.notHeld)
    }

    /// A frame of a link type lb cannot decode: delivered whole behind an opaque Ethernet
    /// header, all to the same ring of each group.
    mutating func deliverOpaque(_ f: Frame) {
        counters.add(.opaqueLink)
        counters.add(.unparsed)
        counters.add(error: .unknownLinkType)
        var d = Decoded()
        d.start = 0
        d.end = f.bytes.count
        d.synthType = opaqueEtherType
        d.nonIP = true
        d.error = .unknownLinkType
        readyScratch.pointee = d
        deliver(f.bytes, readyScratch, hash: 0, ts: f.timestampNanos, wire: f.wireLength + 14, extraFlags: 0, input: f.input)
    }

    /// Publishes every ring's new descriptors (once per batch).
    @inline(__always)
    mutating func publishAll() {
        for r in 0..<ringCount { producers[r].publish() }
        var bad: UInt64 = 0
        for r in 0..<ringCount { bad &+= producers[r].badTails }
        if bad != 0 { counters.set(.badTails, bad) }
    }
}
