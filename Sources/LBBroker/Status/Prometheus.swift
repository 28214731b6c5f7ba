/// lb's status in the Prometheus text exposition format (0.0.4) or in OpenMetrics 1.0, rendered
/// from the snapshot: every number of `LBStatus` and `RingStatus` becomes a sample of the
/// family `PrometheusCatalog` names for it. Families are written whole, HELP and TYPE once
/// each (the format requires all lines of a family together).
public enum Prometheus {
    public static func render(_ s: StatusSnapshot, openMetrics: Bool) -> String {
        var p = Exposition()
        p.add(.gauge("lb_up", "1 while lb runs"), [("input", s.lb.interface)], .int(1))
        for (path, v) in StatusEncoder.encode(s.lb).leaves() {
            guard let spec = PrometheusCatalog.spec(lb: path) else { continue }
            p.add(spec, spec.labels(path), v)
        }
        p.add(.gauge("lb_failover_enabled", "1 when failover moves a failed ring's buckets"), [], .int(s.lb.failoverAfterSeconds == nil ? 0 : 1))
        if let i = s.lb.ingress {
            p.add(.gauge("lb_ingress_info", "the live ingress: source and mode"), [("source", i.source), ("mode", i.mode)], .int(1))
        }
        for v in s.lb.udp?.vniTop ?? [] {
            let l = [("vni", String(v.vni))]
            p.add(.counter("lb_udp_vni_packets_total", "packets of the VNIs with the most (udp::)"), l, .uint(v.packets))
            p.add(.counter("lb_udp_vni_bytes_total", "bytes of the VNIs with the most (udp::)"), l, .uint(v.bytes))
        }
        var groups: [(name: String, fwd: UInt64, drop: UInt64, live: Int, rings: Int)] = []
        for r in s.rings {
            let ring = [("group", r.group), ("ring", String(r.ring))]
            for (path, v) in StatusEncoder.encode(r).leaves() {
                guard let spec = PrometheusCatalog.spec(ring: path) else { continue }
                p.add(spec, ring + spec.labels(path), v)
            }
            p.add(.gauge("lb_ring_consumer_attached", "1 while a consumer is attached"), ring, .int(r.attached ? 1 : 0))
            p.add(.gauge("lb_ring_consumer_stalled", "1 while a capture replay has given up waiting for the consumer"),
                  ring, .int(r.consumer == "stalled" ? 1 : 0))
            if !groups.contains(where: { $0.name == r.group }) { groups.append((r.group, 0, 0, 0, 0)) }
            let g = groups.firstIndex { $0.name == r.group }!
            groups[g].fwd &+= r.packetsForwarded
            groups[g].drop &+= r.packetsDropped
            groups[g].live += r.attached && !r.failedOver ? 1 : 0
            groups[g].rings += 1
        }
        // Loss by stage: per ring above, the worker's own estimate above; per group here.
        for g in groups {
            let l = [("group", g.name)]
            p.add(.counter("lb_group_packets_forwarded_total", "packets written into the group's rings"), l, .uint(g.fwd))
            p.add(.counter("lb_group_packets_dropped_total", "packets the group's rings dropped"), l, .uint(g.drop))
            p.add(.gauge("lb_group_rings", "rings in the group"), l, .int(Int64(g.rings)))
            p.add(.gauge("lb_group_rings_live", "rings with a consumer that is not failed over"), l, .int(Int64(g.live)))
            p.add(.counter("lb_loss_packets_total", "packets lost, by stage"), [("stage", "lb_ring")] + l, .uint(g.drop))
        }
        return p.text(openMetrics: openMetrics)
    }

    /// Families in the order of their first sample.
    struct Exposition {
        struct Family { let spec: MetricSpec; var samples: String }
        var families: [Family] = []
        var index: [String: Int] = [:]

        mutating func add(_ spec: MetricSpec, _ labels: [(String, String)], _ v: StatusValue) {
            guard let value = Self.value(v) else { return }          // null: no sample
            var line = spec.name
            if !labels.isEmpty { line += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}" }
            line += " " + value + "\n"
            if let i = index[spec.name] {
                families[i].samples += line
            } else {
                index[spec.name] = families.count
                families.append(Family(spec: spec, samples: line))
            }
        }

        func text(openMetrics: Bool) -> String {
            var out = ""
            for f in families {
                // OpenMetrics names a counter's family without its _total suffix
                let family = openMetrics && f.spec.type == .counter && f.spec.name.hasSuffix("_total")
                    ? String(f.spec.name.dropLast(6)) : f.spec.name
                out += "# HELP \(family) \(Self.escapeHelp(f.spec.help))\n# TYPE \(family) \(f.spec.type.rawValue)\n" + f.samples
            }
            if openMetrics { out += "# EOF\n" }
            return out
        }

        static func value(_ v: StatusValue) -> String? {
            switch v {
            case .bool(let b): b ? "1" : "0"
            case .int(let x): String(x)
            case .uint(let x): String(x)
            case .double(let x): x.isFinite ? StatusValue.decimal(x) : nil
            default: nil
            }
        }

        static func escape(_ s: String) -> String {
            var o = ""
            for c in s {
                switch c {
                case "\\": o += "\\\\"
                case "\"": o += "\\\""
                case "\n": o += "\\n"
                default: o.append(c)
                }
            }
            return o
        }

        static func escapeHelp(_ s: String) -> String {
            s.replacingOccurrences("\\", "\\\\").replacingOccurrences("\n", "\\n")
        }
    }
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
    }
}
