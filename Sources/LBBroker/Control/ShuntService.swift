import Glibc
import LBCore
import LBSys

/// Serves shunt requests on the control thread: parses them (`ShuntRequest`), sends them to
/// every data-path thread's `ShuntChannel`, and answers when all have replied. Also gathers
/// the entries that ended: a flow's entry ends in each data-path thread on its own, and its
/// final counts (the sum) are reported once the last one ended.
final class ShuntService {
    struct FlowID: Hashable {
        let a: ShuntTable.Endpoint, b: ShuntTable.Endpoint
        let proto: UInt8, extra: UInt32
        init(_ r: ShuntTable.Rule) { a = r.a; b = r.b; proto = r.proto; extra = r.extra }
    }

    /// Who asked: a control-socket client, or a dumbno-style UDP sender.
    enum Target {
        case socket(Int32)
        case udp(DatagramPeer)
    }

    /// The dumbno-compatible UDP listener (`--shunt-udp`): JSON requests
    /// `{"src", "dst", "proto", "sport", "dport"}`, one direction each, answered "ok" or
    /// "error: ..."; only from loopback and the addresses allowed; for the groups named.
    struct UDPListener {
        let fd: Int32
        let groups: [String]
        let allowed: Set<String>
        let idleSeconds: Double
    }

    struct Pending {
        let target: Target
        let op: ShuntRequest.Op
        let rule: ShuntTable.Rule
        let group: String
        /// replies expected: one per data-path thread and group of that name
        let expected: Int
        var replies: [ShuntChannel.ReplyKind] = []
        var lanesDone = 0
        var entries: [FlowID: ShuntTable.Entry] = [:]
        let deadline: UInt64
    }

    /// An entry that ended, with its final counts summed over the data-path threads.
    struct Ending {
        var entry: ShuntTable.Entry
        var lanes = 0
        var reason = ShuntTable.EndReason.removed
    }

    let channels: [ShuntChannel]
    /// group names by index (the dispatcher's order)
    let groups: [String]
    let hashVNI: Bool, hashVLAN: Bool
    /// reads the frames workers send (`frame=`), as the data path does
    let decoder: Decoder
    /// sends the answer: the reply (error, message), then text lines, then closes
    let answerSocket: (Int32, Int32, String, [String]) -> Void
    var udp: UDPListener? = nil
    var pending: [UInt64: Pending] = [:]
    var nextToken: UInt64 = 1
    var endings: [Int: [FlowID: Ending]] = [:]
    /// entries whose last data-path copy ended (for `ended` in the stats), per group
    var ended: [UInt64]
    /// Where a flow is shunted, for the XDP program: the directions each group (index) stops,
    /// whether the program has it, and what it had dropped at the last look.
    struct Placement {
        var rule: ShuntTable.Rule
        var groups: [Int: ShuntTable.Directions] = [:]
        var installed = false
        var seen = XDPShuntCounts(packetsAB: 0, ipBytesAB: 0, packetsBA: 0, ipBytesBA: 0)
    }

    /// the AF_XDP ingress's program (nil for other inputs): flows shunted in every group, in
    /// directions all of them stop, are dropped there; taps see every packet, so while a tap
    /// is attached nothing is
    var xdp: XDPShuntMap? = nil
    var tapsAttached: () -> Bool = { false }
    var placements: [FlowID: Placement] = [:]
    var tapsBefore = false
    var nextXDPLook: UInt64 = 0
    /// flows the XDP program drops now, and put in / taken out so far
    var xdpInstalled: UInt64 = 0, xdpRemoved: UInt64 = 0

    /// requests refused, by reason
    var refused: [String: UInt64] = [:]
    var refusedByReason: [(String, UInt64)] {
        ["malformed", "not_allowed", "unknown_group", "busy", "no_answer", "table_full", "not_found"].map { ($0, refused[$0, default: 0]) }
    }

    init(channels: [ShuntChannel], groups: [String], decode: DecodeConfig,
         answer: @escaping (Int32, Int32, String, [String]) -> Void) {
        decoder = Decoder(decode)
        hashVNI = decode.hashVNI
        hashVLAN = decode.hashVLAN
        answerSocket = answer
        self.channels = channels
        self.groups = groups
        ended = Array(repeating: 0, count: groups.count)
    }

    /// Whether answers are awaited (the control thread then looks again soon).
    var waiting: Bool { !pending.isEmpty }

    func answer(_ target: Target, _ error: Int32, _ message: String, _ lines: [String]) {
        switch target {
        case .socket(let fd):
            answerSocket(fd, error, message, lines)
        case .udp(let peer):
            guard let u = udp else { return }
            Sys.sendDatagram(u.fd, Array((error == 0 ? "ok" : "error: " + message).utf8), to: peer)
        }
    }

    /// A request that arrived on `group`'s socket.
    func request(fd: Int32, group name: String, text: String, now: UInt64) {
        let r: ShuntRequest
        do { r = try ShuntRequest.parse(text) } catch {
            refused["malformed", default: 0] += 1
            answer(.socket(fd), EINVAL, "shunt: \(error)", [])
            return
        }
        submit(r, groups: [name], target: .socket(fd), now: now)
    }

    /// Takes what waits on the UDP listener (at most 64 datagrams a turn).
    func pollUDP(now: UInt64) {
        guard let u = udp else { return }
        var buffer = [UInt8](repeating: 0, count: 2048)
        for _ in 0..<64 {
            let got = buffer.withUnsafeMutableBytes { b in try? Sys.receiveDatagram(u.fd, into: b) }
            guard let (n, peer) = got ?? nil else { return }
            let sender = peer.address
            guard sender == "127.0.0.1" || sender == "::1" || sender.hasPrefix("127.") || u.allowed.contains(sender) else {
                refused["not_allowed", default: 0] += 1
                answer(.udp(peer), EPERM, "sender \(sender) is not allowed (loopback, or --shunt-udp-allow)", [])
                continue
            }
            let r: ShuntRequest
            do { r = try Self.parseDumbno(Array(buffer[..<min(n, buffer.count)]), idle: u.idleSeconds) } catch {
                refused["malformed", default: 0] += 1
                answer(.udp(peer), EINVAL, "\(error)", [])
                continue
            }
            submit(r, groups: u.groups, target: .udp(peer), now: now)
        }
    }

    /// dumbno's request: one direction of a flow, as Zeek's NetControl dumbno plugin sends it.
    static func parseDumbno(_ bytes: [UInt8], idle: Double) throws(BrokerError) -> ShuntRequest {
        guard let o = FlatJSON.parse(bytes) else { throw BrokerError("not a JSON object of strings and numbers") }
        func text(_ k: String) -> String? { if case .string(let s) = o[k] { return s }; return nil }
        func port(_ k: String) throws(BrokerError) -> UInt16 {
            switch o[k] {
            case nil, .null: return 0
            case .number(let d):
                guard d >= 0, d <= 65535, d == d.rounded() else { throw BrokerError("\(k): not a port") }
                return UInt16(d)
            default: throw BrokerError("\(k): not a port")
            }
        }
        let proto = text("proto") ?? "ip"
        guard proto != "ip" && proto != "ipv6" else {
            throw BrokerError("proto \(proto): lb shunts flows (tcp, udp, icmp, ...), not host pairs")
        }
        guard let src = text("src"), let dst = text("dst") else { throw BrokerError("src and dst are required") }
        let line = "add proto=\(proto) src=\(src) sport=\(try port("sport")) dst=\(dst) dport=\(try port("dport")) dir=forward idle=\(idle)"
        return try ShuntRequest.parse(line)
    }

    /// Sends a parsed request to every data-path thread, for every group of the given names.
    func submit(_ r: ShuntRequest, groups names: [String], target: Target, now: UInt64) {
        // groups given twice under one name (`-p z:2 -p z:2`) share it: a request covers all
        let indices = groups.indices.filter { names.contains(groups[$0]) }
        guard !indices.isEmpty, indices.allSatisfy({ $0 < 64 }) else {
            refused["unknown_group", default: 0] += 1
            answer(target, ENOENT, "group '\(names.joined(separator: ","))' cannot be shunted (only the first 64 groups can)", [])
            return
        }
        let name = names.joined(separator: ",")
        var frameKey: FlowKey? = nil
        if r.frame != nil {
            guard let k = r.frameKey(decoder) else {
                refused["malformed", default: 0] += 1
                answer(target, EINVAL, "shunt: the frame carries no IP flow lb could shunt", [])
                return
            }
            frameKey = k
        }
        let rule = r.rule(hashVNI: hashVNI, hashVLAN: hashVLAN, frameKey: frameKey)
        let op: ShuntChannel.Op = r.op == .add ? .add : r.op == .del ? .remove : .list
        let token = nextToken
        nextToken += 1
        var sent = 0
        for ch in channels {
            for g in indices where ch.send(.init(op: op, group: g, rule: rule, token: token)) { sent += 1 }
        }
        guard sent == channels.count * indices.count else {
            refused["busy", default: 0] += 1
            answer(target, EAGAIN, "shunt: lb's data path has not taken the previous requests yet; try again", [])
            return
        }
        pending[token] = Pending(target: target, op: r.op, rule: rule, group: name, expected: sent, deadline: now + 2_000_000_000)
    }

    /// Takes the data path's replies, answers the requests all threads have replied to, and
    /// gives up on those that waited 2 s (a replay blocked on a full ring answers late).
    func tick(now: UInt64) {
        tickXDP(now: now)
        for (lane, ch) in channels.enumerated() {
            while let reply = ch.receive() { take(reply, lane: lane) }
        }
        for (token, p) in pending where p.lanesDone == p.expected || now > p.deadline {
            pending[token] = nil
            if p.lanesDone < p.expected {
                refused["no_answer", default: 0] += 1
                answer(p.target, ETIMEDOUT, "shunt: lb's data path did not answer within 2 s (is it blocked on a full ring?)", [])
            } else {
                finish(p)
            }
        }
    }

    func take(_ r: ShuntChannel.Reply, lane: Int) {
        if r.kind == .ended {
            let id = FlowID(r.entry.rule)
            var e = endings[r.group, default: [:]][id] ?? Ending(entry: r.entry, lanes: 0, reason: r.reason)
            if e.lanes > 0 {
                e.entry.packets.0 &+= r.entry.packets.0; e.entry.packets.1 &+= r.entry.packets.1
                e.entry.bytes.0 &+= r.entry.bytes.0; e.entry.bytes.1 &+= r.entry.bytes.1
                e.entry.lastNanos = max(e.entry.lastNanos, r.entry.lastNanos)
            }
            e.lanes += 1
            if e.lanes == channels.count {
                endings[r.group]?[id] = nil
                if r.group < ended.count { ended[r.group] += 1 }
                place(r.entry.rule, group: r.group, adding: false)
            } else {
                endings[r.group, default: [:]][id] = e
            }
            return
        }
        guard var p = pending[r.token] else { return }
        switch r.kind {
        case .added, .updated:
            if lane == 0 { place(p.rule, group: r.group, adding: true) }
            p.replies.append(r.kind)
            p.lanesDone += 1
            pending[r.token] = p
            return
        case .listEntry:
            let id = FlowID(r.entry.rule)
            if var e = p.entries[id] {
                e.packets.0 &+= r.entry.packets.0; e.packets.1 &+= r.entry.packets.1
                e.bytes.0 &+= r.entry.bytes.0; e.bytes.1 &+= r.entry.bytes.1
                e.lastNanos = max(e.lastNanos, r.entry.lastNanos)
                p.entries[id] = e
            } else {
                p.entries[id] = r.entry
            }
        case .removed:
            if lane == 0 { place(r.entry.rule, group: r.group, adding: false) }
            p.replies.append(r.kind)
            p.entries[FlowID(r.entry.rule)] = r.entry
            p.lanesDone += 1
        default:
            p.replies.append(r.kind)
            p.lanesDone += 1
        }
        pending[r.token] = p
    }

    // MARK: The XDP program

    /// Records that group g stops (or no longer stops) the flow, and puts the flow into the XDP
    /// program or takes it out accordingly.
    func place(_ rule: ShuntTable.Rule, group g: Int, adding: Bool) {
        guard xdp != nil else { return }
        let id = FlowID(rule)
        var p = placements[id] ?? Placement(rule: rule)
        if adding { p.groups[g, default: []].formUnion(rule.directions) } else { p.groups[g] = nil }
        placements[id] = p
        reconsider(id)
    }

    /// Whether the program should drop the flow: shunted in every group (the first 64), keyed
    /// without a VLAN/VNI value (the program does not look at them), TCP or UDP, no tap.
    func reconsider(_ id: FlowID) {
        guard let map = xdp, var p = placements[id] else { return }
        let all = min(groups.count, 64)
        var dirs = ShuntTable.Directions.both
        for g in 0..<all { dirs.formIntersection(p.groups[g] ?? []) }
        let want = !dirs.isEmpty && groups.count <= 64 && p.rule.extra == 0 && (p.rule.proto == 6 || p.rule.proto == 17)
            && !tapsBefore
        if want {
            var r = p.rule
            r.directions = dirs
            if (try? map.shunt(r)) != nil {
                if !p.installed { xdpInstalled += 1 }
                p.installed = true
            }
        } else if p.installed {
            creditXDP(&p)                      // what it dropped before it goes out
            map.unshunt(p.rule)
            p.installed = false
            p.seen = XDPShuntCounts(packetsAB: 0, ipBytesAB: 0, packetsBA: 0, ipBytesBA: 0)
            xdpRemoved += 1
        }
        placements[id] = p.groups.isEmpty && !p.installed ? nil : p
    }

    /// Hands what the program dropped since the last look to every group's entry (through the
    /// first data-path thread), which also keeps the entries from idling out.
    func creditXDP(_ p: inout Placement) {
        guard let map = xdp, let now = map.counts(p.rule), let ch = channels.first else { return }
        let d = (now.packetsAB &- p.seen.packetsAB, now.ipBytesAB &- p.seen.ipBytesAB,
                 now.packetsBA &- p.seen.packetsBA, now.ipBytesBA &- p.seen.ipBytesBA)
        guard d.0 | d.2 != 0 else { return }
        p.seen = now
        for g in p.groups.keys {
            var c = ShuntChannel.Command(op: .credit, group: g, rule: p.rule, token: 0)
            c.packets = (d.0, d.2)
            c.bytes = (d.1, d.3)
            _ = ch.send(c)
        }
    }

    /// Every 200 ms: credit what the program dropped; follow taps coming and going.
    func tickXDP(now: UInt64) {
        guard xdp != nil, now >= nextXDPLook else { return }
        nextXDPLook = now &+ 200_000_000
        let taps = tapsAttached()
        if taps != tapsBefore {
            tapsBefore = taps
            for id in Array(placements.keys) { reconsider(id) }
        }
        for id in Array(placements.keys) where placements[id]?.installed == true {
            var p = placements[id]!
            creditXDP(&p)
            placements[id] = p
        }
    }

    func finish(_ p: Pending) {
        let group = p.group
        switch p.op {
        case .add:
            if p.replies.contains(.full) {
                refused["table_full", default: 0] += 1
                answer(p.target, ENOSPC, "shunt: \(group)'s shunt table is full; refused (counted)", [])
            } else {
                answer(p.target, 0, p.replies.contains(.added) ? "added" : "updated", [])
            }
        case .del:
            if p.replies.contains(.removed) {
                answer(p.target, 0, "removed", p.entries.values.map { Self.line(group: group, $0) })
            } else {
                refused["not_found", default: 0] += 1
                answer(p.target, ENOENT, "shunt: no such flow in \(group)'s table", [])
            }
        case .list:
            let lines = p.entries.values.sorted { ($0.addedNanos, $0.rule.a.lo) < ($1.addedNanos, $1.rule.a.lo) }
                .map { Self.line(group: group, $0) }
            answer(p.target, 0, "\(lines.count) entries", lines)
        }
    }

    /// One entry as a JSON object (what `lb shunt list` prints with --json).
    static func line(group: String, _ e: ShuntTable.Entry) -> String {
        let r = e.rule
        let dir = r.directions == .both ? "both" : r.directions == .forward ? "a_to_b" : "b_to_a"
        return "{\"group\":\(JSONText.quote(group)),\"proto\":\(r.proto)"
            + ",\"a\":\(JSONText.quote(Sys.formatAddress(hi: r.a.hi, lo: r.a.lo))),\"a_port\":\(r.a.port)"
            + ",\"b\":\(JSONText.quote(Sys.formatAddress(hi: r.b.hi, lo: r.b.lo))),\"b_port\":\(r.b.port)"
            + ",\"extra\":\(r.extra),\"directions\":\"\(dir)\",\"idle_seconds\":\(JSONText.fixed(Double(r.idleNanos) / 1e9, 3))"
            + ",\"hard_seconds\":\(JSONText.fixed(Double(r.hardNanos) / 1e9, 3))"
            + ",\"packets_a_to_b\":\(e.packets.0),\"bytes_a_to_b\":\(e.bytes.0)"
            + ",\"packets_b_to_a\":\(e.packets.1),\"bytes_b_to_a\":\(e.bytes.1)"
            + ",\"added_ns\":\(e.addedNanos),\"last_ns\":\(e.lastNanos)}"
    }
}
