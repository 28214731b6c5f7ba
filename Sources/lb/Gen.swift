import ArgumentParser
import Glibc
import LBCore
import LBGen
import LBSys

struct Gen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a synthetic trace: TCP sessions, DNS-like UDP, ICMP, IPv6, fragments, VXLAN and GENEVE mirroring.")

    @Option(name: .customShort("w"), help: "The pcap file to write.")
    var write: String

    @Option(help: "mix (every kind of flow), udp64 (minimum-size UDP frames), or vxlan (the mix inside VXLAN).")
    var mode: String = "mix"

    @Option(help: "Number of flows.")
    var flows: Int = 1000

    @Option(help: "Number of packets (exactly).")
    var packets: Int = 100_000

    @Option(help: "Seed; the same seed and options give the same trace.")
    var seed: UInt64 = 1

    @Option(help: "Frame sizes: imix (60/590/1514 in 7:4:1), a size (e.g. 1000), or a range (e.g. 64-1500).")
    var sizes: String = "imix"

    @Flag(help: "Nanosecond timestamps.")
    var nano = false

    func validate() throws {
        guard ["mix", "udp64", "vxlan"].contains(mode) else { throw ValidationError("--mode \(mode): use mix, udp64 or vxlan") }
        guard flows >= 1, packets >= 1, packets <= 50_000_000 else {
            throw ValidationError("--flows must be at least 1 and --packets from 1 to 50000000")
        }
        _ = try sizeDistribution()
    }

    func sizeDistribution() throws -> SynthConfig.SizeDistribution {
        if sizes == "imix" { return .imix }
        let parts = sizes.split(separator: "-").compactMap { Int($0) }
        if parts.count == 1, parts[0] >= 60, parts[0] <= 9018 { return .fixed(parts[0]) }
        if parts.count == 2, parts[0] >= 60, parts[1] <= 9018, parts[0] <= parts[1] { return .uniform(parts[0]...parts[1]) }
        throw ValidationError("--sizes \(sizes): use imix, a frame size from 60 to 9018, or a range such as 64-1500")
    }

    func run() throws {
        var config = SynthConfig(seed: seed, flows: flows, packets: packets,
                                 mode: mode == "udp64" ? .udp64 : mode == "vxlan" ? .vxlanOnly : .mixed)
        config.sizes = try sizeDistribution()
        let trace = TrafficSynth.generate(config)
        do {
            let fd = try Sys.open(write, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
            defer { Sys.close(fd) }
            var out = PcapOutput(fd: fd, nanosecond: nano)
            try out.header(snaplen: 65535)
            for p in trace { try out.append(array: p.bytes, timestampNanos: p.timestampNanos) }
            try out.flush()
            try? printError("lb gen: \(write): \(trace.count) packets, \(Set(trace.map(\.flowIndex)).count) flows")
        } catch {
            try? printError("lb gen: -w \(write): \(error)")
            throw ExitCode(1)
        }
    }
}
