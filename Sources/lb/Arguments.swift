import ArgumentParser
import LBBroker
import LBForward
import LBCore
import LBRing
import LBSys

/// Option values, typed and checked when ArgumentParser reads them (`@Option(transform:)`): a
/// bad value is ArgumentParser's own usage error, "The value 'x' is invalid for '--ring-size
/// <size>': why", exit 64; nothing is parsed by hand afterwards.
struct ArgumentProblem: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// `-p [NAME:]N` (netmap lb's). `NAME:` alone means 2 rings, as in netmap lb; a bare number
/// takes the input's name (`resolved(defaultName:)`).
struct GroupArgument: Sendable {
    var name: String?
    var count: Int
    /// a forwarded group's members (`NAME:vxlan=ADDR,...`, `NAME:port=IFACE,...`), one ring each
    var members: [ForwardGroup.Member]? = nil

    static func parse(_ text: String) throws -> GroupArgument {
        if let colon = text.firstIndex(of: ":") {
            let name = String(text[..<colon])
            let members: [ForwardGroup.Member]?
            do { members = try ForwardGroup.members(parsing: String(text[text.index(after: colon)...])) } catch {
                throw ArgumentProblem("\(error)")
            }
            if let members {
                if let problem = RingName.groupProblem(name) { throw ArgumentProblem(problem) }
                guard members.count <= 1024 else { throw ArgumentProblem("at most 1024 members") }
                return GroupArgument(name: name, count: members.count, members: members)
            }
        }
        var name: String? = nil
        var count = text
        if let colon = text.lastIndex(of: ":") {
            name = String(text[..<colon])
            count = String(text[text.index(after: colon)...])
            if count.isEmpty { count = "2" }
        } else if Int(text) == nil {
            name = text
            count = "2"
        }
        if let name, let problem = RingName.groupProblem(name) { throw ArgumentProblem(problem) }
        guard let n = Int(count), n >= 1, n <= 1024 else {
            throw ArgumentProblem("the number of rings must be from 1 to 1024, as in -p zeek:8")
        }
        return GroupArgument(name: name, count: n)
    }

    func resolved(defaultName: String) -> GroupSpec { GroupSpec(name: name ?? defaultName, count: count) }
}

enum Arguments {
    /// Sizes such as 65536, 64k, 16M, 1G.
    static func size(_ text: String) throws -> Int {
        var digits = Substring(text)
        var scale = 1
        switch text.last?.lowercased() {
        case "k": scale = 1 << 10
        case "m": scale = 1 << 20
        case "g": scale = 1 << 30
        default: break
        }
        if scale != 1 { digits = digits.dropLast() }
        guard let n = Int(digits), n > 0, n <= Int.max / scale else { throw ArgumentProblem("expected a size such as 65536, 64k, 16M or 1G") }
        return n * scale
    }

    /// Seconds, 0 or more.
    static func seconds(_ text: String) throws -> Double {
        guard let s = Double(text), s.isFinite, s >= 0, s <= 1e9 else { throw ArgumentProblem("expected seconds, 0 or more, such as 0.5 or 30") }
        return s
    }

    /// Seconds, above 0.
    static func positiveSeconds(_ text: String) throws -> Double {
        let s = try seconds(text)
        guard s > 0 else { throw ArgumentProblem("expected seconds above 0") }
        return s
    }

    /// An integer within `range`.
    static func integer(in range: ClosedRange<Int>) -> @Sendable (String) throws -> Int {
        { text in
            guard let n = Int(text), range.contains(n) else { throw ArgumentProblem("use \(range.lowerBound) to \(range.upperBound)") }
            return n
        }
    }

    /// Numbers such as 0,2,3 (CPUs, queues).
    static func numbers(_ text: String) throws -> [Int] {
        let list = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard !list.isEmpty, list.allSatisfy({ ($0 ?? -1) >= 0 }) else { throw ArgumentProblem("expected numbers such as 0,2") }
        return list.map { $0! }
    }

    /// `KIND:PORT` for --tunnel-port.
    static func tunnelPort(_ text: String) throws -> TunnelPort {
        let parts = text.split(separator: ":")
        let kinds: [String: EncapKind] = ["vxlan": .vxlan, "geneve": .geneve, "gtpu": .gtpu, "gtp": .gtpu,
                                          "teredo": .teredo, "ayiya": .ayiya, "gre": .greUDP, "gre_udp": .greUDP]
        guard parts.count == 2, let kind = kinds[parts[0].lowercased()], let port = UInt16(parts[1]), port > 0 else {
            throw ArgumentProblem("expected KIND:PORT with KIND one of vxlan, geneve, gtpu, teredo, ayiya, gre (GRE-in-UDP), e.g. vxlan:8472")
        }
        return TunnelPort(port, kind)
    }

    /// `--failover SECS|off`.
    static func failover(_ text: String) throws -> FailoverMode {
        if text == "off" { return .off }
        guard let s = Double(text), s.isFinite, s >= 0 else { throw ArgumentProblem("use SECS (e.g. 5) or off") }
        return .after(s)
    }

    /// `--metrics ADDR:PORT` / `[ADDR]:PORT`, checked, kept as written.
    static func listenAddress(_ text: String) throws -> String {
        do { _ = try Operations.parseListenAddress(text) } catch {
            let prefix = "--metrics \(text): "
            throw ArgumentProblem(error.description.hasPrefix(prefix) ? String(error.description.dropFirst(prefix.count)) : error.description)
        }
        return text
    }

    /// `--divert` terms.
    static func divert(_ text: String) throws -> DivertFilter {
        do { return try DivertFilter(text) } catch { throw ArgumentProblem(error.description) }
    }

    /// `--xdp-frames`: a power of two from 1024 to 1048576.
    static func xdpFrames(_ text: String) throws -> UInt32 {
        guard let n = UInt32(text), n >= 1024, n <= 1 << 20, n & (n - 1) == 0 else {
            throw ArgumentProblem("use a power of two from 1024 to 1048576")
        }
        return n
    }

    /// `NAME:K`.
    static func ringName(_ text: String) throws -> RingName {
        do { return try RingName(parsing: text) } catch { throw ArgumentProblem("\(error)") }
    }

    /// `-i`: pcap:FILE, af_xdp:IFACE[@Q,...], af_packet:IFACE, udp::..., or a bare interface name
    /// (AF_XDP). Queues and the replay rate come from their own options (`InputSpec.with`).
    static func input(_ text: String) throws -> InputSpec {
        if text.hasPrefix("pcap:") {
            guard text.count > 5 else { throw ArgumentProblem("pcap:FILE needs a file") }
            return .pcapFile(path: String(text.dropFirst(5)), rate: 0)
        }
        if text.hasPrefix("af_packet:") {
            let iface = String(text.dropFirst(10))
            guard !iface.isEmpty, !iface.contains("@") else {
                throw ArgumentProblem("af_packet:IFACE needs an interface (one socket for all queues: no @queue)")
            }
            return .afPacket(interface: iface)
        }
        if text.hasPrefix("udp:") {
            do { return .udp(try DatagramSpec.parse(text), UDPOptions()) } catch { throw ArgumentProblem("\(error)") }
        }
        let explicit = text.hasPrefix("af_xdp:")
        var rest = explicit ? String(text.dropFirst(7)) : text
        var queues: [Int]? = nil
        if let at = rest.firstIndex(of: "@") {
            do { queues = try numbers(String(rest[rest.index(after: at)...])) } catch { throw ArgumentProblem("queues are numbers, as in eth1@0,1") }
            rest = String(rest[..<at])
        }
        guard !rest.isEmpty, !rest.contains(":"), !rest.contains("/"), rest.utf8.count < 16 else {
            throw ArgumentProblem("use pcap:FILE, af_xdp:IFACE[@Q,...], IFACE, af_packet:IFACE or udp::ADDR:PORT[:ENCAP]")
        }
        if !explicit && Sys.interfaceIndex(rest) == nil {
            throw ArgumentProblem("there is no interface \(rest) (a capture file is pcap:FILE)")
        }
        return .afXDP(interface: rest, queues: queues)
    }
}

extension XDPMode: ExpressibleByArgument {}

/// `--decap`.
enum DecapMode: String, ExpressibleByArgument, CaseIterable { case strip, keep }

/// `--hash`: 5-tuple, addresses and protocol, addresses.
enum HashTuple: Int, ExpressibleByArgument, CaseIterable {
    case five = 5, three = 3, two = 2
    init?(argument: String) { guard let n = Int(argument), let t = HashTuple(rawValue: n) else { return nil }; self = t }
    var defaultValueDescription: String { String(rawValue) }
    static var allValueStrings: [String] { allCases.map { String($0.rawValue) } }
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
