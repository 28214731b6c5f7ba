import LBRing

/// Ring names for a log line, however many: runs of one group are ranges (`zeek:0-511`), and
/// the line stops at about `limit` characters with how many more there are. A start-up with
/// 1024 rings and no consumer is one line, not 1024.
enum RingList {
    static func summary(_ names: [RingName], limit: Int = 240) -> String {
        var parts: [String] = []
        var i = 0
        while i < names.count {
            var j = i
            while j + 1 < names.count && names[j + 1].group == names[i].group && names[j + 1].index == names[j].index + 1 { j += 1 }
            parts.append(j == i ? names[i].description : "\(names[i].group):\(names[i].index)-\(names[j].index)")
            i = j + 1
        }
        var out = ""
        for (k, p) in parts.enumerated() {
            if !out.isEmpty && out.count + p.count + 1 > limit {
                let rest = parts[k...].reduce(0) { $0 + count(of: $1) }
                return out + " and \(rest) more"
            }
            out += (out.isEmpty ? "" : " ") + p
        }
        return out
    }

    /// How many rings a part of the summary names.
    static func count(of part: String) -> Int {
        guard let colon = part.lastIndex(of: ":") else { return 1 }
        let r = part[part.index(after: colon)...].split(separator: "-").compactMap { Int($0) }
        return r.count == 2 ? r[1] - r[0] + 1 : 1
    }
}
