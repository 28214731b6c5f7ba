import CLBXdp

/// `--divert FILTER`: which frames lb's XDP program sends to lb; the rest go to the kernel.
///
/// A small subset of tcpdump's language, compiled into rules the program checks (any rule
/// matching diverts): terms joined by `or`, each a protocol, a destination port, or both:
/// `udp dst port 4789`, `udp dst port 4789 or udp dst port 6081`, `proto 47`, `gre`, `tcp`,
/// `dst port 53`. Non-first IP fragments of a listed protocol are diverted too (they carry no
/// port; their first fragment decides where the datagram goes inside lb).
public struct DivertFilter: Equatable, Sendable {
    public struct Rule: Equatable, Sendable {
        public var proto: UInt8   // 0 = any
        public var dport: UInt16  // 0 = any
        public init(proto: UInt8, dport: UInt16) { self.proto = proto; self.dport = dport }
    }
    public var rules: [Rule]

    static let protocols: [String: UInt8] = ["tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmp6": 58, "gre": 47,
                                             "esp": 50, "ah": 51, "ipip": 4, "ip6": 41]

    public init(_ text: String) throws(BrokerError) {
        let words = text.lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        var rules: [Rule] = []
        var i = 0
        func bad(_ why: String) -> BrokerError {
            BrokerError("--divert '\(text)': \(why); use terms like 'udp dst port 4789', 'tcp', 'proto 47', joined by 'or'")
        }
        while i < words.count {
            var rule = Rule(proto: 0, dport: 0)
            var seen = false
            if i < words.count, (words[i] == "ip" || words[i] == "ip6"), i + 1 < words.count && words[i + 1] == "proto" {
                i += 1
            }
            if i < words.count, let p = Self.protocols[words[i]] {
                rule.proto = p
                i += 1
                seen = true
            } else if i < words.count, words[i] == "proto" {
                guard i + 1 < words.count else { throw bad("'proto' needs a number") }
                if let p = UInt8(words[i + 1]) {
                    rule.proto = p
                } else if let p = Self.protocols[words[i + 1]] {
                    rule.proto = p
                } else {
                    throw bad("'\(words[i + 1])' is not an IP protocol")
                }
                i += 2
                seen = true
            }
            if i < words.count, words[i] == "dst" {
                guard i + 2 < words.count, words[i + 1] == "port", let port = UInt16(words[i + 2]), port > 0 else {
                    throw bad("'dst' must be followed by 'port N' (1-65535)")
                }
                if rule.proto != 0 && rule.proto != 6 && rule.proto != 17 && rule.proto != 132 {
                    throw bad("a port needs tcp, udp or sctp")
                }
                rule.dport = port
                i += 3
                seen = true
            } else if i < words.count, words[i] == "port" || words[i] == "src" {
                throw bad("only destination ports can be diverted ('dst port N')")
            }
            guard seen else { throw bad(i < words.count ? "unexpected '\(words[i])'" : "empty term") }
            rules.append(rule)
            if i < words.count {
                guard words[i] == "or" || words[i] == "||" else { throw bad("expected 'or' before '\(words[i])'") }
                i += 1
                guard i < words.count else { throw bad("nothing after 'or'") }
            }
        }
        guard !rules.isEmpty else { throw bad("empty filter") }
        guard rules.count <= Int(LB_XDP_MAX_RULES) else { throw bad("at most \(LB_XDP_MAX_RULES) terms") }
        self.rules = rules
    }

    /// The program's configuration (nil filter: divert everything).
    static func config(_ filter: DivertFilter?) -> lb_xdp_config {
        var c = lb_xdp_config()
        guard let filter else { c.divert_all = 1; return c }
        c.divert_all = 0
        c.rule_count = UInt32(filter.rules.count)
        withUnsafeMutableBytes(of: &c.rules) { raw in
            let r = raw.bindMemory(to: lb_xdp_rule.self)
            for (k, rule) in filter.rules.enumerated() {
                r[k] = lb_xdp_rule(proto: rule.proto, pad: 0, dport: rule.dport)
            }
        }
        return c
    }
}
