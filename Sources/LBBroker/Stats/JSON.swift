/// A small JSON object writer for the stats lines (no Foundation; keys keep their order).
struct JSONObject {
    private var text = "{"
    private var first = true

    private mutating func key(_ k: String) {
        if !first { text += "," }
        first = false
        text += "\"\(k)\":"
    }

    mutating func add(_ k: String, _ v: UInt64) { key(k); text += String(v) }
    mutating func add(_ k: String, _ v: Int) { key(k); text += String(v) }
    mutating func add(_ k: String, _ v: Bool) { key(k); text += v ? "true" : "false" }
    mutating func addNull(_ k: String) { key(k); text += "null" }
    /// A value already rendered as JSON (a number).
    mutating func add(_ k: String, raw: String) { key(k); text += raw }
    mutating func add(_ k: String, _ v: String) { key(k); text += JSONObject.quote(v) }
    mutating func add(_ k: String, _ v: Double, digits: Int) { key(k); text += JSONObject.fixed(v, digits) }
    mutating func add(_ k: String, object: JSONObject) { key(k); text += object.rendered }
    /// An object of name → count pairs, in their order.
    mutating func add(_ k: String, counts: [(String, UInt64)]) {
        var o = JSONObject()
        for (name, n) in counts { o.add(name, n) }
        add(k, object: o)
    }

    var rendered: String { text + "}" }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// A fixed-point rendering (`digits` decimals) of a finite, non-negative-or-negative double.
    static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "0" }
        var scale: Double = 1
        for _ in 0..<digits { scale *= 10 }
        let negative = v < 0
        let scaled = (abs(v) * scale).rounded()
        guard scaled < 9.0e18 else { return String(Int64(v)) }
        let n = UInt64(scaled)
        let whole = n / UInt64(scale)
        var frac = String(n % UInt64(scale))
        frac = String(repeating: "0", count: digits - frac.count) + frac
        return (negative ? "-" : "") + String(whole) + (digits > 0 ? "." + frac : "")
    }
}
