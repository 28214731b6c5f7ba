import CLBRing
import CLBXdp
import Glibc
import LBRing
import LBSys
import Synchronization

extension Broker {
    /// `--user NAME`: after the sockets, the XDP program and the rings exist, lb needs no
    /// privilege; it becomes NAME (all threads; every capability is gone).
    static func dropPrivileges(to account: (name: String, uid: UInt32, gid: UInt32), rings: [RingRecord],
                               log: (String) -> Void) throws(BrokerError) {
        let (user, uid, gid) = account
        // The ring memory becomes the user's (the sockets were bound as the user's, see
        // ControlServer.socketOwner): consumers check that both belong to the user lb runs as
        // (LB_USER), and consumers running as that user can connect. The group stays
        // --ring-group's when there is one. (The directory is left as it is: a socket lb cannot
        // remove at the end is replaced by the next lb.)
        for r in rings {
            for fd in [r.memory.dataDescriptor, r.memory.controlDescriptor] where fchown(fd, uid, uid_t.max) != 0 {
                throw BrokerError("--user \(user): cannot give the memory of \(r.name) to uid \(uid): \(SysError("fchown"))")
            }
        }
        var err = [CChar](repeating: 0, count: 256)
        guard lbx_drop_to_user(uid, gid, &err, err.count) == 0 else {
            throw BrokerError("--user \(user): \(XDPText.text(err))")
        }
        log("running as \(user) (uid \(uid)) from now on")
    }
}
