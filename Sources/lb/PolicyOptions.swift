import ArgumentParser
import LBBroker

extension TenantTag.Source: ExpressibleByArgument {}

/// `--filter`, `--slice`, `--tenant-tag`, `--tenant-map`: what each group receives
/// (docs/policy.md), checked before anything starts.
extension Run {
    /// Per group, in group order: its filter (compiled here, so a bad expression is a usage
    /// error naming the option) and its slice length.
    func policies(groups: [GroupSpec]) throws -> [GroupPolicy] {
        var out = [GroupPolicy](repeating: GroupPolicy(), count: groups.count)
        func indices(_ option: String, _ value: String) throws -> ([Int], String) {
            guard let eq = value.firstIndex(of: "="), eq != value.startIndex else {
                throw ValidationError("\(option) \(value): use GROUP=VALUE")
            }
            let name = String(value[..<eq]), rest = String(value[value.index(after: eq)...])
            let found = groups.indices.filter { groups[$0].name == name }
            guard !found.isEmpty else {
                throw ValidationError("\(option) \(value): no group '\(name)' (the groups are \(groups.map(\.name).joined(separator: ", ")))")
            }
            guard found.allSatisfy({ $0 < 64 }) else { throw ValidationError("\(option) \(value): only the first 64 groups can have a policy") }
            return (found, rest)
        }
        var seen: Set<Int> = []
        for f in filter {
            let (gs, expression) = try indices("--filter", f)
            guard !expression.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--filter \(f): the expression is empty") }
            guard seen.isDisjoint(with: gs) else { throw ValidationError("--filter \(f): one filter per group (join them with 'and' / 'or')") }
            seen.formUnion(gs)
            let compiled: PacketFilter
            do { compiled = try PacketFilter(expression) } catch { throw ValidationError("--filter \(f): \(error)") }
            for g in gs { out[g].filter = compiled }
        }
        var sliced: Set<Int> = []
        for s in slice {
            let (gs, n) = try indices("--slice", s)
            guard let v = Int(n), (14...65535).contains(v) else { throw ValidationError("--slice \(s): N is a number of bytes from 14 to 65535") }
            guard sliced.isDisjoint(with: gs) else { throw ValidationError("--slice \(s): one slice length per group") }
            sliced.formUnion(gs)
            for g in gs { out[g].slice = v }
        }
        return out
    }

    func tenant() throws -> TenantTag? {
        guard let source = tenantTag else {
            if !tenantMap.isEmpty { throw ValidationError("--tenant-map is for --tenant-tag vni") }
            return nil
        }
        var map: [UInt32: UInt16] = [:]
        for item in tenantMap.flatMap({ $0.split(separator: ",") }) {
            let parts = item.split(separator: "=")
            guard parts.count == 2, let id = UInt32(parts[0]), let vlan = UInt16(parts[1]), (1...4094).contains(vlan) else {
                throw ValidationError("--tenant-map \(item): use ID=VLAN with VLAN from 1 to 4094")
            }
            guard map[id] == nil || map[id] == vlan else { throw ValidationError("--tenant-map: id \(id) is mapped twice") }
            map[id] = vlan
        }
        if source == .vlan && !map.isEmpty { throw ValidationError("--tenant-map is for --tenant-tag vni (VLAN ids are kept as they are)") }
        return TenantTag(source: source, map: map)
    }
}
