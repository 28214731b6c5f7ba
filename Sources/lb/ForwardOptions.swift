import ArgumentParser
import LBBroker
import LBForward
import LBRing
import LBSys

extension PortTX: ExpressibleByArgument {}

/// Forwarded groups (`-p NAME:vxlan=...`, `-p NAME:port=...`; docs/scale-out.md): one thread
/// per member, consuming the member's ring in lb's own process.
extension Run {
    func forwardGroups() throws -> [ForwardGroup] {
        var out: [ForwardGroup] = []
        var vnis: [String: UInt32] = [:], own: Set<String> = []
        for item in forwardVni {
            let parts = item.split(separator: "=")
            if parts.count == 2 && parts[1] == "packet" {
                own.insert(String(parts[0]))
                continue
            }
            guard parts.count == 2, let v = UInt32(parts[1]), v < 1 << 24 else {
                throw ValidationError("--forward-vni \(item): use GROUP=VNI, VNI below 16777216, or GROUP=packet")
            }
            vnis[String(parts[0])] = v
        }
        for (i, p) in pipes.enumerated() {
            guard let members = p.members, let name = p.name else { continue }
            var g = ForwardGroup(name: name, members: members, vni: vnis[name] ?? UInt32(i + 1), keepalive: !noForwardKeepalive)
            g.packetVNI = own.contains(name)
            out.append(g)
        }
        for name in Set(vnis.keys).union(own) where !out.contains(where: { $0.name == name }) {
            throw ValidationError("--forward-vni \(name): no forwarded group of that name")
        }
        return out
    }

    /// Starts one thread per member; returns what the status reads of them.
    func startForwarders(_ config: inout BrokerConfig) throws {
        let groups = try forwardGroups()
        guard !groups.isEmpty else { return }
        let log: @Sendable (String) -> Void = { msg in try? Sys.write(2, "lb: \(msg)\n") }
        var all: [MemberForwarder] = []
        for g in groups {
            for (i, m) in g.members.enumerated() {
                let vxlan: Bool = { if case .vxlan = m { return true }; return false }()
                log("forward \(g.name):\(i) → \(m)" + (vxlan ? (g.packetVNI ? " (VNI: the packet's own, else \(g.vni))" : " (VNI \(g.vni))") : ""))
                let f = MemberForwarder(ring: RingName(group: g.name, index: i), member: m, vni: g.vni, packetVNI: g.packetVNI, keepalive: g.keepalive,
                                        runDir: config.runDir, log: log)
                f.start(portTX: forwardPortTx)
                all.append(f)
            }
        }
        let members = all
        config.forwardCounts = {
            (members.map { ($0.ring.description, $0.fragmented.load(ordering: .relaxed)) },
             members.map { ($0.ring.description, $0.failed.load(ordering: .relaxed)) },
             members.map { ($0.ring.description, $0.downs.load(ordering: .relaxed)) })
        }
    }
}
