import ArgumentParser
import LBBroker
import LBCore
import LBRing

/// Parses `[NAME:]N` (netmap lb's -p). `NAME:` alone means 2 rings, as in netmap lb.
func parseGroup(_ text: String, defaultName: String) throws -> GroupSpec {
    var name = defaultName
    var count = text
    if let colon = text.lastIndex(of: ":") {
        name = String(text[..<colon])
        count = String(text[text.index(after: colon)...])
        if count.isEmpty { count = "2" }
    } else if Int(text) == nil {
        name = text
        count = "2"
    }
    if let problem = RingName.groupProblem(name) { throw ValidationError("-p \(text): \(problem)") }
    guard let n = Int(count), n >= 1, n <= 1024 else {
        throw ValidationError("-p \(text): the number of rings must be from 1 to 1024, as in -p zeek:8")
    }
    return GroupSpec(name: name, count: n)
}

/// Parses sizes such as 65536, 64k, 16M, 1G.
func parseSize(_ text: String, option: String) throws -> Int {
    var digits = text
    var scale = 1
    if let last = text.last?.lowercased() {
        switch last {
        case "k": scale = 1 << 10
        case "m": scale = 1 << 20
        case "g": scale = 1 << 30
        default: break
        }
        if scale != 1 { digits = String(text.dropLast()) }
    }
    guard let n = Int(digits), n > 0, n <= Int.max / scale else {
        throw ValidationError("\(option) \(text): expected a size such as 65536, 64k, 16M or 1G")
    }
    return n * scale
}

/// Parses `KIND:PORT` for --tunnel-port.
func parseTunnelPort(_ text: String) throws -> TunnelPort {
    let parts = text.split(separator: ":")
    let kinds: [String: EncapKind] = ["vxlan": .vxlan, "geneve": .geneve, "gtpu": .gtpu, "gtp": .gtpu,
                                      "teredo": .teredo, "ayiya": .ayiya, "gre": .greUDP, "gre_udp": .greUDP]
    guard parts.count == 2, let kind = kinds[parts[0].lowercased()], let port = UInt16(parts[1]), port > 0 else {
        throw ValidationError("--tunnel-port \(text): expected KIND:PORT with KIND one of vxlan, geneve, gtpu, teredo, ayiya, gre (GRE-in-UDP), e.g. vxlan:8472")
    }
    return TunnelPort(port, kind)
}

/// A group name from a capture file's name: "traces/big-day.pcap" -> "big-day".
func defaultGroupName(for input: String) -> String {
    var base = input.split(separator: "/").last.map(String.init) ?? input
    if let dot = base.firstIndex(of: "."), dot != base.startIndex { base = String(base[..<dot]) }
    let cleaned = String(base.unicodeScalars.map { c -> Character in
        let ok = (c >= "0" && c <= "9") || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" || c == "-" || c == "."
        return ok ? Character(c) : "_"
    }.prefix(31))
    return cleaned.isEmpty ? "lb" : cleaned
}
