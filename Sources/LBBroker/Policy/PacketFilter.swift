import CPcap

/// A tcpdump expression compiled by libpcap for Ethernet frames (what every ring holds), run
/// with libpcap's `bpf_filter` on a packet as a group receives it. Immutable once compiled:
/// the data-path threads share one.
public final class PacketFilter: @unchecked Sendable {
    var program = bpf_program()
    let handle: OpaquePointer
    public let expression: String

    public init(_ expression: String) throws(BrokerError) {
        guard let h = pcap_open_dead(DLT_EN10MB, 262144) else { throw BrokerError("libpcap: pcap_open_dead failed") }
        handle = h
        self.expression = expression
        guard pcap_compile(h, &program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            let why = String(cString: pcap_geterr(h))
            // deinit closes the handle (every property is set)
            throw BrokerError("filter '\(expression)': \(why)")
        }
    }

    deinit {
        pcap_freecode(&program)
        pcap_close(handle)
    }

    /// Whether the packet's first `caplen` bytes (of `wire` on the wire) match.
    @inline(__always)
    public func matches(_ bytes: UnsafeRawPointer, caplen: Int, wire: Int) -> Bool {
        bpf_filter(program.bf_insns, bytes.assumingMemoryBound(to: UInt8.self), UInt32(truncatingIfNeeded: max(wire, caplen)),
                   UInt32(truncatingIfNeeded: caplen)) != 0
    }
}
