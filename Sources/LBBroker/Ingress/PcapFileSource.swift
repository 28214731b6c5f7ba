import LBCore
import LBSys

/// Replays a capture file (classic pcap or pcapng), read through a window (`CaptureFile`):
/// frames point into the window until the next `receive`. Optionally paced to a packet rate.
public struct PcapFileSource: PacketSource, ~Copyable {
    var file: CaptureFile
    public var finished: Bool { file.finished }
    public var isLive: Bool { false }
    public var name: String { "pcap:\(file.path)" }
    /// packets per second, 0 = as fast as the consumers take them
    let rate: UInt64
    var startNanos: UInt64 = 0
    var sent: UInt64 = 0
    /// why the file ended before its last byte, if it did
    public var stoppedEarly: String? { file.stoppedEarly }
    /// bytes of the file not read (a damaged, truncated or changed file stopped the replay)
    public var unreadBytes: Int { file.unreadBytes }

    public init(path: String, rate: UInt64 = 0) throws(BrokerError) {
        self.rate = rate
        do { file = try CaptureFile(path: path) } catch { throw BrokerError("-i pcap:\(error)") }
    }

    public mutating func receive(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        guard !file.finished else { return 0 }
        var n = max
        if rate > 0 {
            let now = Sys.monoNanos()
            if startNanos == 0 { startNanos = now }
            let due = (now - startNanos) * rate / 1_000_000_000 + 1
            if sent >= due {
                Sys.sleep(nanos: min(1_000_000, (sent - due + 1) * 1_000_000_000 / rate))
                return 0
            }
            n = min(n, Int(due - sent))
        }
        var count = 0
        // The window may slide only before the first frame of a batch: the frames point into it.
        while count < n, let p = file.next(canSlide: count == 0) {
            frames[count] = Frame(bytes: p.data, wireLength: p.wireLength, timestampNanos: p.timestampNanos,
                                  linkType: p.linkType, input: UInt32(truncatingIfNeeded: p.interface))
            count += 1
        }
        sent += UInt64(count)
        return count
    }
}
