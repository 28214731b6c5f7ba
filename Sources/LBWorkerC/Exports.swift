// The C ABI of the worker library (include/lb_worker.h in CLBWorker): @_cdecl functions over
// RingConsumer. Built as liblbworker.so (the `lbworker` product); scripts/install installs it
// with the headers and lbworker.pc.

import CLBRing
import CLBWorker
import Glibc
import LBRing
import LBSys
import LBWorker

/// What an `lb_worker_t *` points to. Allocated once in open, freed in close; nothing is
/// allocated per batch.
final class WorkerHandle {
    var consumer: RingConsumer
    init(_ c: consuming RingConsumer) { consumer = c }
}

@inline(__always)
func handle(_ w: OpaquePointer?) -> WorkerHandle? {
    guard let w else { return nil }
    return Unmanaged<WorkerHandle>.fromOpaque(UnsafeRawPointer(w)).takeUnretainedValue()
}

/// Copies `message` into the caller's error buffer (NUL-terminated, truncated to fit).
func setError(_ errbuf: UnsafeMutablePointer<CChar>?, _ message: String, code: Int32) {
    errno = code
    guard let errbuf else { return }
    let size = Int(LB_WORKER_ERRBUF_SIZE)
    var n = 0
    for b in message.utf8 {
        if n == size - 1 { break }
        errbuf[n] = CChar(bitPattern: b)
        n += 1
    }
    errbuf[n] = 0
}

@_cdecl("lb_worker_api_version")
public func lbWorkerAPIVersion() -> Int32 { LB_WORKER_API_VERSION }

@_cdecl("lb_worker_open")
public func lbWorkerOpen(_ name: UnsafePointer<CChar>?, _ errbuf: UnsafeMutablePointer<CChar>?) -> OpaquePointer? {
    var opts = lb_worker_options()
    opts.wait_ms = 60_000
    return lbWorkerOpenOpts(name, &opts, errbuf)
}

@_cdecl("lb_worker_open_opts")
public func lbWorkerOpenOpts(_ name: UnsafePointer<CChar>?, _ opts: UnsafePointer<lb_worker_options>?,
                             _ errbuf: UnsafeMutablePointer<CChar>?) -> OpaquePointer? {
    guard let name else { setError(errbuf, "lb_worker_open: no ring name", code: EINVAL); return nil }
    let text = String(cString: name)
    let ring: RingName
    do { ring = try RingName(parsing: text) } catch {
        setError(errbuf, error.description, code: EINVAL)
        return nil
    }
    var runDir: String? = nil
    var wait: UInt64? = 60_000_000_000
    var napMax: UInt64? = nil
    if let o = opts?.pointee {
        if let d = o.run_dir { runDir = String(cString: d) }
        if o.nap_us < 0 { napMax = 0 } else if o.nap_us > 0 { napMax = UInt64(min(o.nap_us, 1_000_000)) &* 1000 }
        if o.wait_ms < 0 {
            wait = nil
        } else {
            let (ns, overflow) = UInt64(o.wait_ms).multipliedReportingOverflow(by: 1_000_000)
            wait = overflow ? nil : ns   // more than 584 years: forever
        }
    }
    do {
        var c = try RingConsumer.attach(ring, runDir: runDir, waitNanos: wait)
        if let napMax { c.nap.maxNanos = napMax }
        let h = WorkerHandle(c)
        return OpaquePointer(Unmanaged.passRetained(h).toOpaque())
    } catch {
        setError(errbuf, "\(text): \(error.description)", code: error.code != 0 ? error.code : ENOENT)
        return nil
    }
}

@_cdecl("lb_worker_next_batch")
public func lbWorkerNextBatch(_ w: OpaquePointer?, _ pkts: UnsafeMutablePointer<lb_worker_packet>?,
                              _ max: Int32, _ timeoutMillis: Int32) -> Int32 {
    guard let h = handle(w), let pkts, max > 0 else { return LB_WORKER_EINVAL }
    let timeout: Int64 = timeoutMillis < 0 ? -1 : Int64(timeoutMillis) * 1_000_000
    let result = h.consumer.nextBatch(max: Int(max), timeoutNanos: timeout) { i, lane, p in
        let d = p.descriptor
        pkts[i] = lb_worker_packet(
            data: p.bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), tunnel: p.tunnel,
            ts_ns: d.ts_ns, flow_hash: d.flow_hash, caplen: UInt32(truncatingIfNeeded: p.bytes.count),
            wirelen: d.wirelen, flags: d.flags, l3_off: d.l3_off, encap: d.encap, depth: d.depth,
            vni: d.vni, vlan: d.vlan, lane: UInt16(truncatingIfNeeded: lane), input: d.input, reserved: 0)
    }
    switch result {
    case .packets(let n): return Int32(n)
    case .timeout: return 0
    case .endOfStream: return LB_WORKER_EOS
    case .producerGone: return LB_WORKER_GONE
    }
}

@_cdecl("lb_worker_release")
public func lbWorkerRelease(_ w: OpaquePointer?) {
    handle(w)?.consumer.release()
}

@_cdecl("lb_worker_report")
public func lbWorkerReport(_ w: OpaquePointer?, _ processed: UInt64, _ gaps: UInt64, _ acks: UInt64) {
    handle(w)?.consumer.report(processed: processed, lossGaps: gaps, lossAcks: acks)
}

@_cdecl("lb_worker_info")
public func lbWorkerInfo(_ w: OpaquePointer?, _ out: UnsafeMutablePointer<lb_worker_info>?) -> Int32 {
    guard let h = handle(w), let out else { return LB_WORKER_EINVAL }
    let i = h.consumer.info
    var r = lb_worker_info()
    r.group = i.group
    r.ring = i.ring_index
    r.ring_count = i.ring_count
    r.lanes = i.lane_count
    r.max_caplen = i.max_caplen
    r.link_type = i.link_type
    r.producer_pid = i.producer_pid
    r.instance_id = i.instance_id
    r.packets_read = h.consumer.packets
    r.bad_descriptors = h.consumer.badDescriptors
    out.pointee = r
    return 0
}

@_cdecl("lb_worker_close")
public func lbWorkerClose(_ w: OpaquePointer?) {
    guard let w else { return }
    Unmanaged<WorkerHandle>.fromOpaque(UnsafeRawPointer(w)).release()
}

// MARK: Shunting

func shuntResult(_ body: () throws(AttachError) -> Void) -> Int32 {
    do {
        try body()
        return 0
    } catch {
        return error.code != 0 ? -error.code : -EIO
    }
}

func shuntAsk(_ flags: UInt32, _ idle: Double, _ hard: Double) -> ShuntAsk? {
    guard idle >= 0, hard >= 0, idle.isFinite, hard.isFinite, flags & ~LB_WORKER_SHUNT_ONE_WAY == 0 else { return nil }
    return ShuntAsk(oneWay: flags & LB_WORKER_SHUNT_ONE_WAY != 0, idleSeconds: idle, hardSeconds: hard)
}

@_cdecl("lb_worker_shunt")
public func lbWorkerShunt(_ w: OpaquePointer?, _ pkt: UnsafePointer<lb_worker_packet>?, _ flags: UInt32,
                          _ idle: Double, _ hard: Double) -> Int32 {
    guard let h = handle(w), let p = pkt?.pointee, let data = p.data, let ask = shuntAsk(flags, idle, hard) else { return -EINVAL }
    let frame = UnsafeRawBufferPointer(start: data, count: Int(p.caplen))
    let vlan: UInt16? = p.flags & LB_F_VLAN != 0 ? p.vlan : nil
    return shuntResult { () throws(AttachError) in _ = try h.consumer.shunt(frame: frame, vni: p.vni, vlan: vlan, ask) }
}

@_cdecl("lb_worker_shunt_flow")
public func lbWorkerShuntFlow(_ w: OpaquePointer?, _ flow: UnsafePointer<CChar>?, _ flags: UInt32,
                              _ idle: Double, _ hard: Double) -> Int32 {
    guard let h = handle(w), let flow, let ask = shuntAsk(flags, idle, hard) else { return -EINVAL }
    let text = String(cString: flow)
    return shuntResult { () throws(AttachError) in _ = try h.consumer.shunt(flow: text, ask) }
}

@_cdecl("lb_worker_unshunt_flow")
public func lbWorkerUnshuntFlow(_ w: OpaquePointer?, _ flow: UnsafePointer<CChar>?) -> Int32 {
    guard let h = handle(w), let flow else { return -EINVAL }
    let text = String(cString: flow)
    return shuntResult { () throws(AttachError) in _ = try h.consumer.unshunt(flow: text) }
}
