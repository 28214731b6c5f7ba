import ArgumentParser
import LBBroker
import LBForward
import LBRing
import LBSys

/// Forwarded groups (`-p NAME:vxlan=...`, `-p NAME:port=...`; docs/scale-out.md): one thread
/// per member, consuming the member's ring in lb's own process.
extension Run {
    func forwardGroups() throws -> [ForwardGroup] {
        var out: [ForwardGroup] = []
        var vnis: [String: UInt32] = [:]
        for item in forwardVni {
            let parts = item.split(separator: "=")
            guard parts.count == 2, let v = UInt32(parts[1]), v < 1 << 24 else {
                throw ValidationError("--forward-vni \(item): use GROUP=VNI, VNI below 16777216")
            }
            vnis[String(parts[0])] = v
        }
        for (i, p) in pipes.enumerated() {
            guard let members = p.members, let name = p.name else { continue }
            out.append(ForwardGroup(name: name, members: members, vni: vnis[name] ?? UInt32(i + 1), keepalive: !noForwardKeepalive))
        }
        for name in vnis.keys where !out.contains(where: { $0.name == name }) {
            throw ValidationError("--forward-vni \(name): no forwarded group of that name")
        }
        return out
    }

    func startForwarders(_ config: BrokerConfig) throws {
        let groups = try forwardGroups()
        let log: @Sendable (String) -> Void = { msg in try? Sys.write(2, "lb: \(msg)\n") }
        for g in groups {
            for (i, m) in g.members.enumerated() {
                log("forward \(g.name):\(i) → \(m)" + (g.members.count > 0 && { if case .vxlan = m { return true }; return false }() ? " (VNI \(g.vni))" : ""))
                MemberForwarder(ring: RingName(group: g.name, index: i), member: m, vni: g.vni, keepalive: g.keepalive,
                                runDir: config.runDir, log: log).start()
            }
        }
    }
}
