// lb-bench: lb's data path alone (capture in memory -> parse -> decap -> hash -> 8 rings, a
// consumer draining them on the other core), beside a C yardstick doing the same job, in one run.
//
//   lb-bench [--yardstick PATH] [--inputs udp64,trace,vxlan] [--rings default,small] [--repeat N]
//            [--packets N] [--warmup MIN | --warmup-exact N] [--trace FILE ...] [--corpus DIR] [--json FILE]
//            [--producer-cpu N] [--consumer-cpu N] [--quiet-wait SECONDS] [--dedup NANOS|on] [--new-cycles]
//
// Prints a table and writes JSON. Allocations are counted with ordo-one's malloc interposer
// (linked in; its malloc/free come before libc's in the lookup order) over the measured loop.

import BenchKit
import Foundation
import LBCore
import LBRing
import MallocInterposerSwift

struct Options {
    var yardstick: String? = nil
    var inputs = ["udp64", "trace", "vxlan"]
    var geometries = ["default", "small"]
    var repeatCount = 5
    var packets: Int? = nil
    var traces: [String] = []
    var json: String? = nil
    var producerCPU = 0
    var consumerCPU = 1
    var corpus = "/work/shared/zeek-corpus/traces"
    var warmup = 2_000_000
    var quietWait = 300.0
    var warmupExact: Int? = nil
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    func value(_ name: String) -> String {
        guard let v = args.popFirst() else { fatalError("\(name) needs a value") }
        return v
    }
    while let a = args.popFirst() {
        switch a {
        case "--yardstick": o.yardstick = value(a)
        case "--inputs": o.inputs = value(a).split(separator: ",").map(String.init)
        case "--rings": o.geometries = value(a).split(separator: ",").map(String.init)
        case "--repeat": o.repeatCount = Int(value(a)) ?? 3
        case "--packets": o.packets = Int(value(a))
        case "--trace": o.traces.append(value(a))
        case "--corpus": o.corpus = value(a)
        case "--warmup": o.warmup = Int(value(a)) ?? 2_000_000
        case "--quiet-wait": o.quietWait = Double(value(a)) ?? 300
        case "--warmup-exact": o.warmupExact = Int(value(a))
        case "--json": o.json = value(a)
        case "--producer-cpu": o.producerCPU = Int(value(a)) ?? 0
        case "--consumer-cpu": o.consumerCPU = Int(value(a)) ?? 1
        // --dedup NANOS (or on: 1 ms): a deduplicating dispatcher, every cycle over the frames
        // shifted in packet time (--new-cycles) so that none is a copy of the last
        case "--dedup": let v = value(a); DataPathBench.dedupWindowNanos = v == "on" ? 1_000_000 : UInt64(v) ?? 1_000_000
        case "--new-cycles": DataPathBench.newCycles = true
        case "--tenant-tag": DataPathBench.tenantTag = value(a)
        case "-h", "--help":
            print("""
                usage: lb-bench [--yardstick PATH] [--inputs udp64,trace,vxlan] [--rings default,small] [--repeat N]
                                [--packets N] [--warmup MIN | --warmup-exact N] [--trace FILE ...] [--corpus DIR]
                                [--json FILE] [--producer-cpu N] [--consumer-cpu N] [--quiet-wait SECONDS]
                                [--dedup NANOS|on] [--new-cycles]
                """)
            exit(0)
        default: fatalError("unknown option \(a)")
        }
    }
    return o
}

/// The real trace mix: the three largest captures of the corpus (55% of its packets, 81% of its bytes,
/// all plain TCP/IP: SSH, IRC with a DCC file transfer, HTTP), concatenated.
let defaultTraces = ["ssh/ssh.pcap", "irc-dcc-send.pcapng", "http/no_crlf.pcap"]

struct Input {
    var name: String
    var short: String
    var label: String
    var pcap: String
    var packets: Int
}

struct CRun {
    var fields: [String: String]
    var packets: Int { Int(fields["packets"] ?? "0") ?? 0 }
    var nanos: UInt64 { UInt64(fields["nanos"] ?? "0") ?? 0 }
    var mpps: Double { Double(packets) / Double(max(nanos, 1)) * 1000 }
    var nsPerPacket: Double { Double(nanos) / Double(max(packets, 1)) }
    var drops: UInt64 { UInt64(fields["drops"] ?? "0") ?? 0 }
    /// warm-up included (nil: a yardstick that does not print it)
    var dropsTotal: UInt64? { fields["drops_total"].flatMap { UInt64($0) } }
    var hashsum: String { fields["hashsum"] ?? "?" }
    var consumerHashsum: String { fields["consumer_hashsum"] ?? "?" }
    var consumed: UInt64 { UInt64(fields["consumed"] ?? "0") ?? 0 }
    var forwarded: UInt64 { UInt64(fields["forwarded"] ?? "0") ?? 0 }
    var cpuShare: Double { Double(UInt64(fields["cpu_nanos"] ?? "0") ?? 0) / Double(max(nanos, 1)) }
}

func runYardstick(_ path: String, pcap: String, packets: Int, warmup: Int, geometry g: RingGeometry, options o: Options) -> CRun? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = [pcap, "\(packets)", "\(warmup)", "\(g.slots)", "\(g.dataBytes)", "\(o.producerCPU)", "\(o.consumerCPU)"]
    let out = Pipe()
    p.standardOutput = out
    do { try p.run() } catch {
        FileHandle.standardError.write("cannot run \(path): \(error)\n".data(using: .utf8)!)
        return nil
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0, let text = String(data: data, encoding: .utf8) else { return nil }
    var fields: [String: String] = [:]
    for kv in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
        let parts = kv.split(separator: "=", maxSplits: 1)
        if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
    }
    return CRun(fields: fields)
}

func hex(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

func median<T>(_ xs: [T], by key: (T) -> Double) -> T {
    let s = xs.sorted { key($0) < key($1) }
    return s[s.count / 2]
}

func pad(_ s: String, _ n: Int, right: Bool = true) -> String {
    s.count >= n ? s : (right ? String(repeating: " ", count: n - s.count) + s : s + String(repeating: " ", count: n - s.count))
}

func f(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }

// MARK: - main

let o = parseOptions()

// Is the interposer really counting? (It must precede libc in the lookup order.)
MallocInterposerSwift.initialize()
MallocInterposerSwift.hook()
let probeBlock = malloc(100)
free(probeBlock)
MallocInterposerSwift.unhook()
let interposerActive = MallocInterposerSwift.getStatistics().mallocCount >= 1
let probe = AllocationProbe(
    start: { MallocInterposerSwift.reset(); MallocInterposerSwift.hook() },
    stop: {
        MallocInterposerSwift.unhook()
        let s = MallocInterposerSwift.getStatistics()
        return (s.mallocCount, s.freeCount)
    })

var inputs: [Input] = []
do {
    for name in o.inputs {
        let path = "/tmp/lb-bench-\(name).pcap"
        switch name {
        case "udp64":
            try Traffic.writePcap(Traffic.udp64(), to: path)
            inputs.append(Input(name: name, short: "(a) 64-byte UDP", label: "(a) 64-byte UDP, 4096 flows", pcap: path, packets: o.packets ?? 10_000_000))
        case "trace":
            let files = o.traces.isEmpty ? defaultTraces.map { "\(o.corpus)/\($0)" } : o.traces
            try Traffic.writePcap(Traffic.traces(files), to: path)
            inputs.append(Input(name: name, short: "(b) trace mix", label: "(b) trace mix: " + files.map { ($0 as NSString).lastPathComponent }.joined(separator: "+"),
                                pcap: path, packets: o.packets ?? 5_000_000))
        case "vxlan":
            try Traffic.writePcap(Traffic.vxlan(), to: path)
            inputs.append(Input(name: name, short: "(c) VXLAN", label: "(c) VXLAN, 4096 inner TCP/UDP flows", pcap: path, packets: o.packets ?? 10_000_000))
        default:
            fatalError("unknown input \(name) (udp64, trace, vxlan)")
        }
    }
} catch {
    fatalError("\(error)")
}

struct Row {
    var input: Input
    var geometryName: String
    var geometry: RingGeometry
    var census: String
    var swift: SwiftRun
    var swiftAll: [SwiftRun]
    var c: CRun?
    var cAll: [CRun]
    var swiftHash: String
    var warmup: Int
    var ratio: Double?
    var pairRatios: [Double]
}

let decoder = Decoder()
var rows: [Row] = []
print("lb-bench: producer on CPU \(o.producerCPU), consumer on CPU \(o.consumerCPU); 1 group of \(DataPathBench.rings) rings; "
      + "median of \(o.repeatCount) runs; malloc interposer \(interposerActive ? "active" : "NOT ACTIVE (allocations not counted)")")
for input in inputs {
    let set: FrameSet
    do { set = try FrameSet(pcap: input.pcap) } catch { fatalError("\(error)") }
    let census = set.census(decoder)
    let swiftHash = hex(set.hashChecksum(decoder))
    print("\n\(input.label): \(census)")
    for gname in o.geometries {
        let g = gname == "small" ? DataPathBench.smallGeometry : RingGeometry.default
        let warmup = o.warmupExact ?? DataPathBench.warmupPackets(set, geometry: g, minimum: o.warmup)
        var sr: [SwiftRun] = []
        var cr: [CRun] = []
        for _ in 0..<o.repeatCount {
            _ = Machine.waitQuiet(maxSeconds: o.quietWait)
            do {
                sr.append(try DataPathBench.run(set, geometry: g, packets: input.packets, warmup: warmup,
                                                producerCPU: o.producerCPU, consumerCPU: o.consumerCPU,
                                                probe: interposerActive ? probe : nil))
            } catch { fatalError("\(error)") }
            _ = Machine.waitQuiet(maxSeconds: o.quietWait)
            if let y = o.yardstick, let c = runYardstick(y, pcap: input.pcap, packets: input.packets, warmup: warmup, geometry: g, options: o) {
                cr.append(c)
            }
        }
        let s = median(sr) { $0.mpps }
        let c = cr.isEmpty ? nil : median(cr) { $0.mpps }
        // lb and C run alternately; the ratio of each adjacent pair is steadier than the ratio
        // of the medians when the machine's speed drifts (a VM with neighbours).
        let pairRatios = zip(sr, cr).map { $0.mpps / $1.mpps }
        let ratio = pairRatios.isEmpty ? nil : median(pairRatios) { $0 }
        let line = "  \(pad(gname, 7, right: false)) lb \(f(s.mpps)) Mpps (\(f(s.nsPerPacket, 1)) ns/pkt, runs "
            + sr.map { f($0.mpps) + "@" + f($0.cpuShare * 100, 0) + "%" }.joined(separator: " ") + ")"
            + (c.map { "   C \(f($0.mpps)) Mpps (runs " + cr.map { f($0.mpps) + "@" + f($0.cpuShare * 100, 0) + "%" }.joined(separator: " ") + ")" } ?? "")
            + (ratio.map { "   lb/C \(f($0)) (pairs " + pairRatios.map { f($0) }.joined(separator: " ") + ")" } ?? "")
        print(line)
        fflush(nil)
        rows.append(Row(input: input, geometryName: gname, geometry: g, census: census, swift: s, swiftAll: sr, c: c, cAll: cr,
                        swiftHash: swiftHash, warmup: warmup, ratio: ratio, pairRatios: pairRatios))
    }
}

// MARK: - table

print("")
let header = ["input", "rings", "impl", "packets", "seconds", "Mpps", "ns/pkt", "mallocs/pkt", "drops", "cpu", "lb/C"]
let widths = [24, 8, 4, 10, 7, 6, 7, 12, 8, 5, 5]
func rowLine(_ cells: [String]) -> String {
    zip(cells, widths).enumerated().map { i, cw in pad(cw.0, cw.1, right: i >= 3) }.joined(separator: " ")
}
print(rowLine(header))
print(String(repeating: "-", count: widths.reduce(0, +) + widths.count - 1))
for r in rows {
    let s = r.swift
    let mallocs = s.mallocs.map { f(Double($0) / Double(s.packets), 6) + ($0 > 0 ? " (\($0))" : "") } ?? "n/a"
    print(rowLine([r.input.short, r.geometryName, "lb", "\(s.packets)", f(Double(s.nanos) / 1e9, 3), f(s.mpps), f(s.nsPerPacket, 1),
                   mallocs, "\(s.drops)", f(s.cpuShare * 100, 0) + "%", r.ratio.map { f($0) } ?? "-"]))
    if let c = r.c {
        print(rowLine(["", "", "C", "\(c.packets)", f(Double(c.nanos) / 1e9, 3), f(c.mpps), f(c.nsPerPacket, 1), "-", "\(c.drops)",
                       f(c.cpuShare * 100, 0) + "%", ""]))
    }
}

// MARK: - checks

print("")
var ok = true
for r in rows {
    var notes: [String] = []
    if let c = r.c {
        let hashOK = c.hashsum == r.swiftHash
        notes.append("flow hashes \(hashOK ? "agree" : "DIFFER") (\(r.swiftHash) vs \(c.hashsum))")
        if !hashOK { ok = false }
        // The consumers' sums cover the whole session, warm-up included: they can only be
        // compared when neither side dropped anything at all (a drop in the warm-up changes
        // which packets were consumed without showing in the measured loop's drops).
        if let cTotal = c.dropsTotal, r.swift.dropsTotal == 0 && cTotal == 0
            && r.swift.consumed == r.swift.forwarded && c.consumed == c.forwarded {
            let same = hex(r.swift.consumerHashSum) == c.consumerHashsum
            notes.append("consumers saw \(same ? "the same" : "DIFFERENT") packets")
            if !same { ok = false }
        } else if r.swift.dropsTotal != 0 || (c.dropsTotal ?? 1) != 0 {
            notes.append("consumers not compared: drops in the session (lb \(r.swift.dropsTotal), C \(c.dropsTotal.map(String.init) ?? "?"))")
        }
    }
    if r.swift.consumed != r.swift.forwarded { notes.append("lb consumer read \(r.swift.consumed) of \(r.swift.forwarded)"); ok = false }
    if r.swift.cpuShare < 0.97 || (r.c.map { $0.cpuShare < 0.97 } ?? false) {
        notes.append("WARNING: the producer got only \(f(r.swift.cpuShare * 100, 0))% (lb) / \(f((r.c?.cpuShare ?? 1) * 100, 0))% (C) of its CPU: something else ran")
    }
    if DataPathBench.dedupWindowNanos > 0 { notes.append("dedup \(DataPathBench.dedupWindowNanos) ns: \(r.swift.deduplicated) deduplicated") }
    else if DataPathBench.newCycles { notes.append("dedup off, cycles shifted in time") }
    if r.swift.badDescriptors != 0 { notes.append("\(r.swift.badDescriptors) bad descriptors"); ok = false }
    print("check \(r.input.name)/\(r.geometryName): " + notes.joined(separator: "; "))
}

// MARK: - JSON

var out: [[String: Any]] = []
for r in rows {
    var e: [String: Any] = [
        "input": r.input.name, "label": r.input.label, "census": r.census, "rings": r.geometryName,
        "ring_slots": r.geometry.slots, "ring_data_bytes": r.geometry.dataBytes, "warmup_packets": r.warmup,
        "lb": [
            "packets": r.swift.packets, "seconds": Double(r.swift.nanos) / 1e9, "mpps": r.swift.mpps,
            "ns_per_packet": r.swift.nsPerPacket, "mallocs": r.swift.mallocs as Any, "frees": r.swift.frees as Any,
            "mallocs_per_packet": r.swift.mallocs.map { Double($0) / Double(r.swift.packets) } as Any,
            "drops": r.swift.drops, "runs_mpps": r.swiftAll.map { $0.mpps }, "hashsum": r.swiftHash,
            "producer_cpu_share": r.swift.cpuShare,
        ] as [String: Any],
    ]
    if let c = r.c {
        e["c"] = ["packets": c.packets, "seconds": Double(c.nanos) / 1e9, "mpps": c.mpps, "ns_per_packet": c.nsPerPacket,
                  "drops": c.drops, "runs_mpps": r.cAll.map { $0.mpps }, "hashsum": c.hashsum,
                  "producer_cpu_share": c.cpuShare] as [String: Any]
        e["ratio_lb_to_c"] = r.ratio as Any
        e["ratio_lb_to_c_pairs"] = r.pairRatios
        e["ratio_of_medians"] = r.swift.mpps / c.mpps
    }
    out.append(e)
}
let doc: [String: Any] = ["machine": ProcessInfo.processInfo.hostName, "cpus": ProcessInfo.processInfo.activeProcessorCount,
                          "producer_cpu": o.producerCPU, "consumer_cpu": o.consumerCPU, "repeat": o.repeatCount,
                          "malloc_interposer_active": interposerActive, "checks_ok": ok, "results": out]
if let data = try? JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys]) {
    if let path = o.json {
        _ = FileManager.default.createFile(atPath: path, contents: data)
        print("JSON written to \(path)")
    } else {
        print(String(data: data, encoding: .utf8) ?? "")
    }
}
exit(ok ? 0 : 1)
