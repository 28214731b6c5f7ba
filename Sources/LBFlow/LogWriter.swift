import Glibc

/// Zeek's log formats: ASCII TSV with its header lines, or JSON lines.
public enum LogFormat: Sendable { case tsv, json }

/// Where a log goes: a file descriptor (stdout) or a file in a directory that is rotated.
/// Records are formatted into a buffer and written in large chunks; nothing here runs per packet.
public struct LogWriter: ~Copyable {
    public let path: String                 // Zeek's log path: "conn", "capture_loss"
    let format: LogFormat
    let fields: [String]
    let types: [String]
    let directory: String?
    let rotateNanos: UInt64
    var fd: Int32
    var buffer: [UInt8] = []
    var openedAt: UInt64 = 0                // network time the current file was opened
    var wroteHeader = false
    public private(set) var records: UInt64 = 0

    /// `directory` nil: write to `fd` (not closed here). Otherwise `<directory>/<path>.log`,
    /// rotated every `rotateSeconds` of network time (0: never) to `<path>.<open>_<close>.log`.
    public init(path: String, format: LogFormat, fields: [String], types: [String],
                fd: Int32 = 1, directory: String? = nil, rotateSeconds: Double = 0) throws(LogError) {
        self.path = path
        self.format = format
        self.fields = fields
        self.types = types
        self.directory = directory
        self.rotateNanos = UInt64(max(0, rotateSeconds) * 1e9)
        self.fd = fd
        buffer.reserveCapacity(1 << 16)
        if let directory {
            self.fd = try Self.openFile(directory + "/" + path + ".log")
        }
    }

    deinit {
        if directory != nil && fd >= 0 { Glibc.close(fd) }
    }

    static func openFile(_ p: String) throws(LogError) -> Int32 {
        let fd = Glibc.open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw LogError("\(p): \(String(cString: strerror(errno)))") }
        return fd
    }

    mutating func header(at ts: UInt64) {
        guard format == .tsv else { return }
        line("#separator \\x09")
        line("#set_separator\t,")
        line("#empty_field\t(empty)")
        line("#unset_field\t-")
        line("#path\t\(path)")
        line("#open\t\(Self.timeString(wallOr: ts))")
        line("#fields\t" + fields.joined(separator: "\t"))
        line("#types\t" + types.joined(separator: "\t"))
    }

    mutating func line(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        buffer.append(10)
    }

    /// Starts a record at network time `ts` (rotates first if due). Append the fields with
    /// `field`/`jsonField`, then call `end`.
    mutating func begin(ts: UInt64) throws(LogError) {
        if !wroteHeader {
            openedAt = ts
            header(at: ts)
            wroteHeader = true
        } else if rotateNanos > 0, directory != nil, ts >= openedAt &+ rotateNanos {
            try rotate(at: ts)
        }
        if format == .json { buffer.append(UInt8(ascii: "{")) }
    }

    mutating func end() throws(LogError) {
        if format == .json {
            if buffer.last == UInt8(ascii: ",") { buffer.removeLast() }
            buffer.append(UInt8(ascii: "}"))
        } else if buffer.last == 9 {
            buffer.removeLast()
        }
        buffer.append(10)
        records &+= 1
        if buffer.count >= 1 << 16 { try flush() }
    }

    /// Appends a field: `value` nil is unset ("-" in TSV, left out of JSON).
    /// `quoted`: a string in JSON.
    mutating func field(_ name: String, _ value: [UInt8]?, quoted: Bool) {
        switch format {
        case .tsv:
            if let value { buffer.append(contentsOf: value) } else { buffer.append(UInt8(ascii: "-")) }
            buffer.append(9)
        case .json:
            guard let value else { return }
            buffer.append(UInt8(ascii: "\""))
            buffer.append(contentsOf: name.utf8)
            buffer.append(contentsOf: "\":".utf8)
            if quoted { buffer.append(UInt8(ascii: "\"")) }
            buffer.append(contentsOf: value)
            if quoted { buffer.append(UInt8(ascii: "\"")) }
            buffer.append(UInt8(ascii: ","))
        }
    }

    /// A set of strings: comma-separated in TSV ("-" when unset), an array in JSON.
    mutating func setField(_ name: String, _ values: [[UInt8]]) {
        switch format {
        case .tsv:
            if values.isEmpty { buffer.append(UInt8(ascii: "-")) }
            for (i, v) in values.enumerated() {
                if i > 0 { buffer.append(UInt8(ascii: ",")) }
                buffer.append(contentsOf: v)
            }
            buffer.append(9)
        case .json:
            guard !values.isEmpty else { return }
            buffer.append(contentsOf: "\"\(name)\":[".utf8)
            for (i, v) in values.enumerated() {
                if i > 0 { buffer.append(UInt8(ascii: ",")) }
                buffer.append(UInt8(ascii: "\""))
                buffer.append(contentsOf: v)
                buffer.append(UInt8(ascii: "\""))
            }
            buffer.append(contentsOf: "],".utf8)
        }
    }

    public mutating func flush() throws(LogError) {
        var off = 0
        while off < buffer.count {
            let n = buffer.withUnsafeBytes { b in Glibc.write(fd, b.baseAddress! + off, b.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LogError("writing \(path).log: \(String(cString: strerror(errno)))")
            }
            off += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    mutating func rotate(at ts: UInt64) throws(LogError) {
        guard let directory else { return }
        if format == .tsv { line("#close\t\(Self.timeString(wallOr: ts))") }
        try flush()
        Glibc.close(fd)
        let from = directory + "/" + path + ".log"
        let to = directory + "/" + path + "." + Self.timeString(wallOr: openedAt) + "_" + Self.timeString(wallOr: ts) + ".log"
        if Glibc.rename(from, to) != 0 { throw LogError("rename \(from): \(String(cString: strerror(errno)))") }
        fd = try Self.openFile(from)
        openedAt = ts
        header(at: ts)
    }

    /// Writes the #close line (TSV) and flushes.
    public mutating func close(at ts: UInt64) throws(LogError) {
        if format == .tsv && wroteHeader { line("#close\t\(Self.timeString(wallOr: ts))") }
        try flush()
    }

    /// "%Y-%m-%d-%H-%M-%S" in local time, as Zeek's log headers and rotated names.
    static func timeString(wallOr ns: UInt64) -> String {
        var t = time_t(ns / 1_000_000_000)
        var tmv = tm()
        localtime_r(&t, &tmv)
        var out = [CChar](repeating: 0, count: 64)
        let n = strftime(&out, 64, "%Y-%m-%d-%H-%M-%S", &tmv)
        return String(decoding: out[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

public struct LogError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

// MARK: Value formatting (Zeek's ASCII forms)

public enum Fmt {
    public static func uint(_ v: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        appendUInt(v, &out)
        return out
    }

    static func appendUInt(_ v: UInt64, _ out: inout [UInt8]) {
        if v == 0 { out.append(UInt8(ascii: "0")); return }
        var digits: [UInt8] = []
        var n = v
        while n > 0 { digits.append(UInt8(ascii: "0") + UInt8(n % 10)); n /= 10 }
        out.append(contentsOf: digits.reversed())
    }

    /// Seconds with six decimals from nanoseconds (Zeek's time and interval columns).
    public static func seconds(_ ns: UInt64) -> [UInt8] {
        let micros = (ns + 500) / 1000
        var out = uint(micros / 1_000_000)
        out.append(UInt8(ascii: "."))
        let frac = micros % 1_000_000
        var d: [UInt8] = []
        var f = frac
        for _ in 0..<6 { d.append(UInt8(ascii: "0") + UInt8(f % 10)); f /= 10 }
        out.append(contentsOf: d.reversed())
        return out
    }

    /// A double the way Zeek's ASCII writer prints it: up to 6 decimals, trailing zeros
    /// trimmed, at least one decimal.
    public static func double(_ v: Double) -> [UInt8] {
        guard v.isFinite else { return Array("0.0".utf8) }
        let scaled = (abs(v) * 1_000_000).rounded()
        let whole = UInt64(scaled / 1_000_000)
        var frac = UInt64(scaled.truncatingRemainder(dividingBy: 1_000_000))
        var out: [UInt8] = v < 0 && scaled > 0 ? [UInt8(ascii: "-")] : []
        out.append(contentsOf: uint(whole))
        out.append(UInt8(ascii: "."))
        var d: [UInt8] = []
        for _ in 0..<6 { d.append(UInt8(ascii: "0") + UInt8(frac % 10)); frac /= 10 }
        var digits = Array(d.reversed())
        while digits.count > 1 && digits.last == UInt8(ascii: "0") { digits.removeLast() }
        out.append(contentsOf: digits)
        return out
    }

    public static func addr(_ a: IPAddr) -> [UInt8] {
        var out = [CChar](repeating: 0, count: 64)
        if a.isV4 {
            var in4 = in_addr(s_addr: a.v4.bigEndian)
            inet_ntop(AF_INET, &in4, &out, 64)
        } else {
            var bytes = [UInt8](repeating: 0, count: 16)
            for i in 0..<8 {
                bytes[i] = UInt8(truncatingIfNeeded: a.hi >> UInt64(56 - 8 * i))
                bytes[8 + i] = UInt8(truncatingIfNeeded: a.lo >> UInt64(56 - 8 * i))
            }
            bytes.withUnsafeBytes { b in _ = inet_ntop(AF_INET6, b.baseAddress, &out, 64) }
        }
        let n = out.firstIndex(of: 0) ?? 0
        return out[0..<n].map { UInt8(bitPattern: $0) }
    }
}
