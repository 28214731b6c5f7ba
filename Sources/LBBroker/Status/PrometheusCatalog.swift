/// One Prometheus family: its name, type and help, and for a field inside a `NamedCounts` (path
/// ending in `*`) the label its name goes into.
public struct MetricSpec: Sendable {
    public enum Kind: String, Sendable { case counter, gauge }
    public let name: String
    public let type: Kind
    public let help: String
    /// the label that carries the last path component (the name inside a `NamedCounts`)
    public let label: String?
    /// labels every sample of this field carries
    public let fixed: [(String, String)]

    static func counter(_ n: String, _ h: String, label: String? = nil, _ fixed: [(String, String)] = []) -> MetricSpec {
        MetricSpec(name: n, type: .counter, help: h, label: label, fixed: fixed)
    }
    static func gauge(_ n: String, _ h: String, label: String? = nil, _ fixed: [(String, String)] = []) -> MetricSpec {
        MetricSpec(name: n, type: .gauge, help: h, label: label, fixed: fixed)
    }

    func labels(_ path: [String]) -> [(String, String)] {
        fixed + (label.map { [($0, path.last ?? "")] } ?? [])
    }
}

/// Which family each field of the status snapshot is exposed as (Prometheus naming: base units,
/// `_total` on counters, units last). Keys are the field's path in snake_case, `*` for the name
/// inside a `NamedCounts`. Strings are labels (`interface`, `group`, `consumer` ...), not
/// samples. The parity test checks that every number of the snapshot has an entry here and a
/// sample in a scrape.
public enum PrometheusCatalog {
    public static func spec(lb path: [String]) -> MetricSpec? { lookup(["lb"] + path) }
    public static func spec(ring path: [String]) -> MetricSpec? { lookup(["ring"] + path) }

    /// Ring fields that are no sample of their own: the ring's labels, and the sum of the
    /// per-reason drop series.
    public static let ringLabels: Set<String> = ["ring", "packets_dropped"]

    static func lookup(_ path: [String]) -> MetricSpec? {
        if let s = table[path.joined(separator: ".")] { return s }
        guard path.count > 2 else { return nil }
        return table[(path.dropLast() + ["*"]).joined(separator: ".")]
    }

    /// One row per field: its path (`lb.PATH` for lb's, `ring.PATH` for a ring's; `*` the name
    /// inside a `NamedCounts`), counter or gauge, the family, `label=L` (the name goes into label
    /// L) or `reason=R` (a fixed label) or `-`, and the help text. Read once, at first use; a
    /// malformed row stops lb at once (and the parity tests, which need every field's row).
    static let table: [String: MetricSpec] = parse("""
        lb.packets_received              counter  lb_packets_received_total                  -                  packets read from the input
        lb.packets_forwarded             counter  lb_packets_forwarded_total                 -                  packets written into rings (a packet counts once per group)
        lb.packets_dropped               counter  lb_packets_dropped_total                   -                  packets the rings dropped (full, no consumer, stalled)
        lb.non_ip_packets                counter  lb_non_ip_packets_total                    -                  frames without an IP layer
        lb.pid                           gauge    lb_pid                                     -                  lb's process id
        lb.uptime_seconds                gauge    lb_uptime_seconds                          -                  seconds since lb started
        lb.bytes_received                counter  lb_received_bytes_total                    -                  bytes read from the input
        lb.bytes_forwarded               counter  lb_forwarded_bytes_total                   -                  bytes written into rings
        lb.packets_unparsed              counter  lb_packets_unparsed_total                  -                  packets that did not parse fully (delivered, hashed on what was read)
        lb.packets_truncated             counter  lb_packets_truncated_total                 -                  packets longer than the slot size, truncated
        lb.amsdu_subframes               counter  lb_amsdu_subframes_total                   -                  802.11 A-MSDU subframes delivered as packets of their own
        lb.consumer_protocol_errors      counter  lb_consumer_protocol_errors_total          -                  consumer tails out of range (ignored)
        lb.failover_after_seconds        gauge    lb_failover_after_seconds                  -                  seconds after which a failed ring's buckets move (absent: failover off)
        lb.failover_bucket_moves.*       counter  lb_failover_bucket_moves_total             label=group        buckets moved by failover (away and back)
        lb.decapsulated.*                counter  lb_decapsulated_total                      label=encap        tunnels removed, by kind
        lb.unparsed.*                    counter  lb_unparsed_total                          label=reason       packets that did not parse, by reason
        lb.fragments.*                   counter  lb_fragments_total                         label=event        the fragment table's counters
        lb.shunt_entries.*               gauge    lb_shunt_entries                           label=group        flows in the group's shunt table
        lb.shunt_added.*                 counter  lb_shunt_added_total                       label=group        flows added to the group's shunt table
        lb.shunt_refused.*               counter  lb_shunt_refused_total                     label=group        shunt requests refused because the table was full
        lb.shunt_expired.*               counter  lb_shunt_expired_total                     label=group        shunted flows ended by their idle or hard timeout
        lb.shunt_removed.*               counter  lb_shunt_removed_total                     label=group        shunted flows removed by a request
        lb.shunt_ended.*                 counter  lb_shunt_ended_total                       label=group        shunted flows whose final counts were reported
        lb.shunt_requests_refused.*      counter  lb_shunt_requests_refused_total            label=reason       shunt requests refused, by reason
        lb.shunt_xdp_flows               gauge    lb_shunt_xdp_flows                         -                  shunted flows lb's XDP program drops (shunted in every group, no tap)
        lb.shunt_xdp_added               counter  lb_shunt_xdp_added_total                   -                  shunted flows put into lb's XDP program
        lb.tenant_tagged                 counter  lb_tenant_tagged_total                     -                  packets given a tenant tag (--tenant-tag)
        lb.tenant_folded                 counter  lb_tenant_folded_total                     -                  tenant tags whose tunnel id was folded into a VLAN id (no --tenant-map entry)
        lb.forward_fragmented.*          counter  lb_forward_fragmented_total                label=member       datagrams to a forwarded member over the path MTU (fragmented by the kernel)
        lb.forward_send_errors.*         counter  lb_forward_send_errors_total               label=member       packets a forwarded member's sender could not send
        lb.forward_downs.*               counter  lb_forward_downs_total                     label=member       times a forwarded member went down (keepalives unanswered, refused, link down)
        lb.tenant_collisions             counter  lb_tenant_collisions_total                 -                  tenant tags whose VLAN id another tunnel id had
        lb.dedup_window_seconds          gauge    lb_dedup_window_seconds                    -                  the --dedup window (absent: dedup off)
        lb.packets_deduplicated          counter  lb_packets_deduplicated_total              -                  packets dropped as copies of one seen less than the --dedup window earlier
        lb.input_unread_bytes           gauge    lb_input_unread_bytes                      -                  bytes of the capture file a damaged or truncated record left unread
        lb.metrics_scrapes               counter  lb_metrics_scrapes_total                   -                  metrics requests answered
        lb.udp.datagrams_received        counter  lb_udp_datagrams_received_total            -                  datagrams read from the udp:: socket
        lb.udp.bytes_received            counter  lb_udp_received_bytes_total                -                  bytes read from the udp:: socket
        lb.udp.datagrams_accepted        counter  lb_udp_datagrams_accepted_total            -                  datagrams whose packet was delivered
        lb.udp.datagrams_rejected        counter  lb_udp_datagrams_rejected_total            -                  datagrams refused (all reasons)
        lb.udp.rejected.*                counter  lb_udp_rejected_total                      label=reason       datagrams refused, by reason
        lb.udp.kernel_drops              counter  lb_udp_kernel_drops_total                  -                  datagrams the kernel dropped (socket buffer full)
        lb.udp.receive_errors            counter  lb_udp_receive_errors_total                -                  errors reading the socket
        lb.udp.keepalives_answered       counter  lb_udp_keepalives_answered_total           -                  keepalives of a forwarding lb answered
        lb.udp.rcvbuf_requested          gauge    lb_udp_rcvbuf_requested_bytes              -                  socket receive buffer asked for
        lb.udp.rcvbuf_granted            gauge    lb_udp_rcvbuf_granted_bytes                -                  socket receive buffer the kernel granted
        lb.udp.vni_count                 gauge    lb_udp_vnis                                -                  VNIs seen (tracked)
        lb.udp.vni_other                 counter  lb_udp_vni_other_packets_total             -                  packets of VNIs past the table's capacity
        lb.ingress.zero_copy             gauge    lb_ingress_zero_copy                       -                  1 when AF_XDP runs in zero-copy mode
        lb.ingress.queues                gauge    lb_ingress_queues                          -                  RX queues read
        lb.ingress.queue_packets.*       counter  lb_ingress_queue_packets_total             label=queue        packets taken per RX queue
        lb.ingress.interface_counters.*  counter  lb_ingress_interface_total                 label=counter      the interface's own counters (sysfs statistics)
        lb.ingress.xdp.*                 counter  lb_ingress_xdp_packets_total               label=verdict      lb's XDP program: packets by verdict
        lb.ingress.xsk.*                 counter  lb_ingress_xsk_total                       label=counter      the AF_XDP sockets' counters
        lb.ingress.af_packet.*           counter  lb_ingress_af_packet_total                 label=counter      the TPACKET ring's counters
        ring.output_ring                 gauge    lb_ring_output_index                       -                  the ring's number across all groups
        ring.packets_forwarded           counter  lb_ring_packets_forwarded_total            -                  packets written into the ring
        ring.bytes_forwarded             counter  lb_ring_forwarded_bytes_total              -                  bytes written into the ring
        ring.dropped_ring_full           counter  lb_ring_packets_dropped_total              reason=ring_full   packets the ring dropped, by reason
        ring.dropped_no_consumer         counter  lb_ring_packets_dropped_total              reason=no_consumer packets the ring dropped, by reason
        ring.dropped_stalled             counter  lb_ring_packets_dropped_total              reason=stalled     packets the ring dropped, by reason
        ring.truncated                   counter  lb_ring_packets_truncated_total            -                  packets truncated to the slot size
        ring.shunted_packets             counter  lb_ring_packets_shunted_total              -                  packets for the ring that a shunt stopped
        ring.shunted_bytes               counter  lb_ring_shunted_bytes_total                -                  bytes for the ring that a shunt stopped
        ring.filtered_packets            counter  lb_ring_packets_filtered_total             -                  packets for the ring that its group's filter rejected
        ring.sliced_packets              counter  lb_ring_packets_sliced_total               -                  packets cut to the group's slice length
        ring.backlog                     gauge    lb_ring_backlog                            -                  packets written and not yet released by the consumer
        ring.slots                       gauge    lb_ring_slots                              -                  descriptors of the ring (all lanes)
        ring.consumer_pid                gauge    lb_ring_consumer_pid                       -                  the attached consumer's process id
        ring.consumer_attaches           counter  lb_ring_consumer_attaches_total            -                  consumers that attached
        ring.consumer_stuck_seconds      gauge    lb_ring_consumer_stuck_seconds             -                  seconds the consumer has had packets waiting and released none
        ring.consumer_detached_seconds   gauge    lb_ring_consumer_detached_seconds          -                  seconds since the consumer left (0 while attached)
        ring.consumer_packets_processed  counter  lb_ring_consumer_packets_processed_total   -                  packets the worker reports it processed (older name)
        ring.packets_processed_by_worker counter  lb_worker_packets_processed_total          -                  packets the worker reports it processed
        ring.worker_loss_gaps            counter  lb_worker_loss_gaps_total                  -                  the worker's own loss estimate: gaps
        ring.worker_loss_acks            counter  lb_worker_loss_acks_total                  -                  the worker's own loss estimate: out of this many acks
        ring.worker_loss_percent         gauge    lb_worker_loss_percent                     -                  100 * gaps / acks, clamped to 0..100 (absent while acks is 0)
        ring.worker_report_age_s         gauge    lb_worker_report_age_seconds               -                  seconds since the worker last reported
        ring.worker_report_pid           gauge    lb_worker_report_pid                       -                  the process id the worker reported
        ring.worker_report_suspect       gauge    lb_worker_report_suspect                   -                  1 when the worker's report cannot be right
        ring.buckets                     gauge    lb_ring_buckets                            -                  hash buckets (of 4096) the ring holds now
        ring.failed_over                 gauge    lb_ring_failed_over                        -                  1 while failover has moved the ring's buckets away
        ring.failovers                   counter  lb_ring_failovers_total                    -                  times the ring's buckets were moved away
        """)

    static func parse(_ text: String) -> [String: MetricSpec] {
        var out: [String: MetricSpec] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: true)
            precondition(f.count == 5, "PrometheusCatalog: malformed row '\(line)'")
            let kind: MetricSpec.Kind = f[1] == "counter" ? .counter : .gauge
            let extra = f[3].split(separator: "=").map(String.init)
            let label = extra.count == 2 && extra[0] == "label" ? extra[1] : nil
            let fixed = extra.count == 2 && extra[0] == "reason" ? [("reason", extra[1])] : []
            out[String(f[0])] = MetricSpec(name: String(f[2]), type: kind, help: String(f[4]).trimmingSpaces, label: label, fixed: fixed)
        }
        return out
    }
}

extension String {
    var trimmingSpaces: String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}
