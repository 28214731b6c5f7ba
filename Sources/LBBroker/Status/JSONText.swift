/// JSON text pieces for the status views (no Foundation).
enum JSONText {
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
