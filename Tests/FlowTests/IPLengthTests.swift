import LBFlow
import LBGen
import Testing

/// A packet whose IPv4 total length is 0 (TCP segmentation offload on the capturing host):
/// Zeek's IP analyzer (ip_hdr_len_zero) drops it unless checksums are ignored, then analyses it
/// with the captured length, while its conn-size analyzer adds the header's 0 to *_ip_bytes
/// (zeek btest scripts.base.protocols.ldap.sasl-signed-clear: orig_ip_bytes 1880 less than the
/// captured lengths).
@Suite("IP total length zero")
struct IPLengthTests {
    static func frames() -> [(timestampNanos: UInt64, bytes: [UInt8])] {
        var c = Conversation()
        c.handshake()
        c.dataFromClient(1000)
        c.ackFromServer()
        var f = c.frames
        f[3].bytes[16] = 0                  // the data segment's total length
        f[3].bytes[17] = 0
        f[3].bytes[24] = 0                  // a valid header checksum again
        f[3].bytes[25] = 0
        let sum = Checksum.internet(Array(f[3].bytes[14..<34]))
        f[3].bytes[24] = UInt8(sum >> 8)
        f[3].bytes[25] = UInt8(sum & 0xFF)
        return f
    }

    @Test("with -C it is analysed with its captured length and adds 0 IP bytes")
    func ignoringChecksums() {
        var config = FlowConfig()
        config.ignoreChecksums = true
        let r = track(Self.frames(), config: config).records
        #expect(r.count == 1)
        #expect(r.first?.origPkts == 3 && r.first?.origIPBytes == 2 * 40 + 0)
        #expect(r.first?.origBytes == 1000 && r.first?.history.string == "ShADa" && r.first?.missedBytes == 0)
    }

    @Test("without -C it is dropped (its header checksum is valid)")
    func checkingChecksums() {
        let r = track(Self.frames()).records
        #expect(r.first?.origPkts == 2 && r.first?.origIPBytes == 80)
        // the ACK of the unseen 1000 bytes is a content gap
        #expect(r.first?.missedBytes == 1000)
    }
}
