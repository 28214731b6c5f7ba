import CLBXdp
import LBCore
import LBRing
import LBSys

/// AF_PACKET: one socket with a TPACKET_V3 ring (its owner), one lane. Receives a copy of the
/// interface's traffic (nothing is taken from the kernel, so no --divert).
final class AFPacketIngress: LiveIngress, @unchecked Sendable {
    let ring: TPacketRing

    init(_ input: InputSpec, iface: String, options: LiveOptions, log: (String) -> Void) throws(BrokerError) {
        guard Sys.interfaceIndex(iface) != nil else { throw BrokerError("af_packet:\(iface): no such interface") }
        if options.divert != nil { throw BrokerError("--divert needs af_xdp (AF_PACKET receives a copy: nothing is taken from the kernel)") }
        ring = try TPacketRing(iface: iface, blockSize: options.blockSize, blockCount: options.blockCount)
        log("af_packet:\(iface): TPACKET_V3 ring of \(options.blockCount) blocks of \(options.blockSize >> 10) KiB")
        super.init(input: input, interface: iface, queues: [0], mode: .tpacketV3, zeroCopy: false)
    }

    override func runLane(_ lane: Int, _ dispatcher: inout Dispatcher, batch: Int) {
        var source = TPacketSource(ring.handle, name: input.name, batch: batch)
        dispatcher.run(&source)
    }

    /// The socket's own losses (tp_drops).
    override func socketDrops() -> UInt64 { ring.stats().drops }

    override func addSocketStatus(_ o: inout IngressStatus) {
        let s = ring.stats()
        o.afPacket = NamedCounts([("tp_packets", s.packets), ("tp_drops", s.drops), ("tp_freeze_q_cnt", s.freeze_q),
                                  ("vlan_tags_restored", s.vlan_restored), ("socket_errors", s.socket_errors)])
    }
}
