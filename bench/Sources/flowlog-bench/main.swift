// flowlog-bench: packets per second of LBFlow's connection tracking on one core over a real
// trace mix, and memory per tracked connection. Release builds only (bench/flowlog/run.sh).
//
//   flowlog-bench [--corpus DIR] [--loops N] [--connections N]
//
// The mix is every classic-pcap/pcapng Ethernet trace of the Zeek corpus (what lb hands a
// worker is an Ethernet frame with the IP header's offset; tunnels are not removed here, so
// the outer flows are tracked). The packets are copied into one buffer, then replayed --loops
// times with timestamps shifted by the trace span plus two hours per loop, so every loop opens
// and closes its connections again (conn records are produced and formatted into TSV, written
// to /dev/null). CPU time is the thread's (CLOCK_THREAD_CPUTIME_ID).
import Glibc
import LBCore
import LBFlow

func arg(_ name: String, _ def: String) -> String {
    let a = CommandLine.arguments
    if let i = a.firstIndex(of: name), i + 1 < a.count { return a[i + 1] }
    return def
}
func now(_ clock: clockid_t) -> UInt64 {
    var t = timespec()
    clock_gettime(clock, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}
/// Resident memory (bytes), from /proc/self/statm.
func resident() -> Int {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var size = 0, rss = 0
    _ = withUnsafeMutablePointer(to: &size) { a in withUnsafeMutablePointer(to: &rss) { b in
        withVaList([a, b]) { vfscanf(f, "%ld %ld", $0) } } }
    return rss * Int(sysconf(Int32(_SC_PAGESIZE)))
}
func f2(_ x: Double) -> String {
    let v = (x * 100).rounded() / 100
    let whole = Int(v)
    let frac = Int(((v - Double(whole)) * 100).rounded())
    return "\(whole).\(frac < 10 ? "0" : "")\(frac)"
}

let corpus = arg("--corpus", "../../../shared/zeek-corpus/traces")
let loops = Int(arg("--loops", "200"))!
let connections = Int(arg("--connections", "200000"))!

// MARK: load the mix

func files(_ dir: String) -> [String] {
    var out: [String] = []
    guard let d = opendir(dir) else { return out }
    defer { closedir(d) }
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        if name == "." || name == ".." { continue }
        let path = dir + "/" + name
        var st = stat()
        guard stat(path, &st) == 0 else { continue }
        if st.st_mode & S_IFMT == S_IFDIR { out += files(path) } else if name.hasSuffix(".pcap") || name.hasSuffix(".pcapng") || name.hasSuffix(".trace") { out.append(path) }
    }
    return out.sorted()
}

func readFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

/// The IP header's offset in an Ethernet frame (through VLAN/QinQ tags), or nil.
func l3Offset(_ b: UnsafeRawBufferPointer) -> Int? {
    var off = 12
    while off + 2 <= b.count {
        let type = UInt16(b[off]) << 8 | UInt16(b[off + 1])
        switch type {
        case 0x8100, 0x88A8, 0x9100: off += 4
        case 0x0800, 0x86DD: return off + 2 < b.count ? off + 2 : nil
        default: return nil
        }
    }
    return nil
}

var data: [UInt8] = []
var packets: [(offset: Int, length: Int, l3: Int, wire: Int, ts: UInt64)] = []
var skipped = 0, traces = 0
var firstTS = UInt64.max, lastTS: UInt64 = 0
for path in files(corpus) {
    guard let bytes = readFile(path) else { continue }
    bytes.withUnsafeBytes { raw in
        guard var reader = try? CaptureReader(raw) else { return }
        traces += 1
        // traces are from different years: rebase each to start at the same time
        var base: UInt64? = nil
        while let p = reader.next() {
            guard p.linkType == 1, let l3 = l3Offset(p.data) else { skipped += 1; continue }
            if base == nil { base = p.timestampNanos }
            let ts = 1_700_000_000_000_000_000 &+ (p.timestampNanos &- base!)
            packets.append((data.count, p.data.count, l3, p.wireLength, ts))
            data += p.data
            firstTS = min(firstTS, ts); lastTS = max(lastTS, ts)
        }
    }
}
// replay in time order, as a capture of all of them would be
packets.sort { $0.ts < $1.ts }
guard !packets.isEmpty else { print("no packets found under \(corpus) (--corpus DIR)"); exit(1) }
let span = lastTS - firstTS
let shift = span + 7_200_000_000_000
let meanBytes = Double(packets.reduce(0) { $0 + $1.length }) / Double(packets.count)
print("mix: \(packets.count) packets (mean \(Int(meanBytes)) bytes) from \(traces) traces, \(skipped) non-Ethernet/non-IP skipped, span \(span / 1_000_000_000) s")

// MARK: throughput

@MainActor func runMix(loops: Int, format: Bool) -> (cpu: UInt64, wall: UInt64, conns: Int, loss: LossCounters, stats: FlowStats) {
    var table = ConnTable(seed: 1)
    let devnull = open("/dev/null", O_WRONLY)
    var writer = try! ConnLog.writer(format: .tsv, fd: devnull)
    var conns = 0
    let c0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC)
    data.withUnsafeBytes { all in
        for loop in 0..<loops {
            let add = UInt64(loop) &* shift
            var k = 0
            for p in packets {
                table.process(UnsafeRawBufferPointer(rebasing: all[p.offset..<(p.offset + p.length)]), l3: p.l3,
                              wireLength: p.wire, ts: p.ts &+ add)
                k &+= 1
                if k & 255 == 0 && !table.finished.isEmpty {
                    conns += table.finished.count
                    if format { for r in table.finished { try! ConnLog.write(r, to: &writer) } }
                    table.finished.removeAll(keepingCapacity: true)
                }
            }
        }
    }
    table.flushAll()
    conns += table.finished.count
    if format { for r in table.finished { try! ConnLog.write(r, to: &writer) } }
    try! writer.flush()
    close(devnull)
    return (now(CLOCK_THREAD_CPUTIME_ID) - c0, now(CLOCK_MONOTONIC) - w0, conns, table.loss, table.stats)
}

_ = runMix(loops: 2, format: true)   // warm-up
for format in [false, true] {
    var rates: [Double] = []
    var last = runMix(loops: 1, format: format)
    for _ in 0..<3 {
        last = runMix(loops: loops, format: format)
        rates.append(Double(packets.count * loops) / (Double(last.cpu) / 1e9))
    }
    rates.sort()
    let median = rates[1]
    let what = format ? "tracking + conn.log TSV" : "tracking only"
    let tracked = 100 * Double(last.stats.tracked) / Double(last.stats.packets)
    print("\(what): \(f2(median / 1e6)) Mpps median of 3 (min \(f2(rates[0] / 1e6)), max \(f2(rates[2] / 1e6))), "
          + "\(Int(1e9 / median)) ns/packet, \(last.conns) connections per run, \(f2(tracked))% of packets tracked, "
          + "CPU \(f2(Double(last.cpu) / 1e9)) s of wall \(f2(Double(last.wall) / 1e9)) s")
}

// MARK: steady-state heap

do {
    var table = ConnTable(seed: 2)
    data.withUnsafeBytes { all in
        for loop in 0..<3 {
            let add = UInt64(loop) &* shift
            for p in packets {
                table.process(UnsafeRawBufferPointer(rebasing: all[p.offset..<(p.offset + p.length)]), l3: p.l3, wireLength: p.wire, ts: p.ts &+ add)
            }
            table.finished.removeAll(keepingCapacity: true)
        }
        let before = resident()
        for loop in 3..<8 {
            let add = UInt64(loop) &* shift
            for p in packets {
                table.process(UnsafeRawBufferPointer(rebasing: all[p.offset..<(p.offset + p.length)]), l3: p.l3, wireLength: p.wire, ts: p.ts &+ add)
            }
            table.finished.removeAll(keepingCapacity: true)
        }
        let after = resident()
        print("steady state: resident memory changed by \(after - before) bytes over 5 loops (\(5 * packets.count) packets)")
    }
}

// MARK: memory per connection

do {
    var frame = [UInt8](repeating: 0, count: 42)
    frame[12] = 0x08; frame[13] = 0x00
    frame[14] = 0x45; frame[16] = 0; frame[17] = 28; frame[22] = 64; frame[23] = 17
    frame[26] = 10; frame[30] = 10; frame[31] = 99
    frame[38] = 0; frame[39] = 8
    var config = FlowConfig()
    config.ignoreChecksums = true
    config.maxConnections = connections + 1
    let before = resident()
    var table = ConnTable(config: config, seed: 3)
    for i in 0..<connections {
        frame[27] = UInt8(i >> 16 & 0xFF); frame[28] = UInt8(i >> 8 & 0xFF); frame[29] = UInt8(i & 0xFF)
        frame[34] = UInt8(i >> 8 & 0xFF); frame[35] = UInt8(i & 0xFF)
        frame[36] = 0x13; frame[37] = 0x88
        frame.withUnsafeBytes { table.process($0, l3: 14, wireLength: 42, ts: 1_700_000_000_000_000_000 + UInt64(i)) }
    }
    let after = resident()
    print("memory: \(table.count) connections tracked, \(after - before) bytes resident = \((after - before) / max(table.count, 1)) bytes per connection (record \(ConnTable.connectionRecordBytes) bytes + index entry + table slack)")
}
