import LBCore
import LBSys

/// Asks a remote lb every 500 ms whether it is there (`Keepalive`, answered by its udp::
/// input) and says whether the member is up: down after three probes in a row go unanswered
/// (or after `markDown`), up again at the first answer to a probe sent after that.
struct Prober {
    let fd: Int32
    let peer: DatagramPeer
    var sequence: UInt64 = 0
    var answered: UInt64 = 0
    /// the member went down when this probe was the last sent (up needs a later answer)
    var downAt: UInt64 = 0
    var up = false
    var nextProbe: UInt64 = 0

    init?(address: [UInt8], port: UInt16) {
        guard let fd = try? Sys.udpSocket(ipv6: address.count == 16) else { return nil }
        self.fd = fd
        peer = DatagramPeer(address: address, port: port)
    }

    mutating func markDown() {
        up = false
        downAt = sequence
    }

    /// Reads the answers that came, sends the next probe when it is due; whether the member is up.
    mutating func tick(now: UInt64) -> Bool {
        guard now >= nextProbe else { return up }
        nextProbe = now &+ MemberForwarder.probeNanos
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let got = buffer.withUnsafeMutableBytes { b in (try? Sys.receiveDatagram(fd, into: b)) ?? nil }
            guard let got else { break }
            if got.count == Keepalive.length {
                let seq = buffer.withUnsafeBytes { b in
                    Keepalive.isReply(UnsafeRawBufferPointer(rebasing: b[0..<Keepalive.length])) ? Keepalive.sequence(UnsafeRawBufferPointer(rebasing: b[0..<Keepalive.length])) : 0
                }
                if seq <= sequence && seq > answered { answered = seq }
            }
        }
        if up {
            if sequence &- answered >= MemberForwarder.missesForDown { markDown() }
        } else if answered > downAt {
            up = true
        }
        sequence &+= 1
        Sys.sendDatagram(fd, Keepalive.probe(sequence: sequence), to: peer)
        return up
    }
}
