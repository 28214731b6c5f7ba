import Foundation
import LBCore

/// One frame of a capture file, copied out of it.
public struct CapturedFrame: Sendable {
    public var bytes: [UInt8]
    public var linkType: UInt32
    public var timestampNanos: UInt64
}

/// Every frame of a capture file (pcap or pcapng), read with LBCore's reader.
public func readCapture(_ path: String) throws -> [CapturedFrame] {
    guard let data = FileManager.default.contents(atPath: path) else { throw TestFailure("cannot read \(path)") }
    return try data.withUnsafeBytes { raw in
        var r = try CaptureReader(raw)
        var out: [CapturedFrame] = []
        while let p = r.next() { out.append(CapturedFrame(bytes: Array(p.data), linkType: p.linkType, timestampNanos: p.timestampNanos)) }
        return out
    }
}

extension Corpus {
    /// Paths of every trace (.pcap, .pcapng) under `root/traces`, sorted; none when the
    /// corpus is missing (callers require some).
    public static func traces() -> [String] {
        let dir = root + "/traces"
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            if rel.hasSuffix(".pcap") || rel.hasSuffix(".pcapng") { out.append(dir + "/" + rel) }
        }
        return out.sorted()
    }
}
