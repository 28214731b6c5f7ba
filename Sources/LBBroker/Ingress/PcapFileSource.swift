import LBCore
import LBSys

/// Replays a capture file (classic pcap or pcapng), mapped into memory: frames point straight
/// into the mapping. Optionally paced to a packet rate.
public struct PcapFileSource: PacketSource, ~Copyable {
    let path: String
    let fd: Int32
    let base: UnsafeMutableRawPointer
    let size: Int
    var reader: CaptureReader
    public private(set) var finished = false
    public var isLive: Bool { false }
    public var name: String { "pcap:\(path)" }
    /// packets per second, 0 = as fast as the consumers take them
    let rate: UInt64
    var startNanos: UInt64 = 0
    var sent: UInt64 = 0
    /// why the file ended before its last byte, if it did
    public var stoppedEarly: String? {
        reader.stoppedEarly.map { "\($0); \(reader.unreadBytes) of its \(size) bytes not read" }
    }
    /// bytes of the file not read (a damaged or truncated record stopped the replay)
    public var unreadBytes: Int { reader.unreadBytes }

    public init(path: String, rate: UInt64 = 0) throws(BrokerError) {
        self.path = path
        self.rate = rate
        let fd: Int32
        do { fd = try Sys.open(path, O_RDONLY_) } catch { throw BrokerError("-i pcap:\(path): cannot open: \(error)") }
        let size: Int
        do { size = try Sys.fileSize(fd) } catch { Sys.close(fd); throw BrokerError("-i pcap:\(path): \(error)") }
        guard size > 0 else { Sys.close(fd); throw BrokerError("-i pcap:\(path): the file is empty") }
        let base: UnsafeMutableRawPointer
        do { base = try Sys.mapFile(fd, size: size) } catch { Sys.close(fd); throw BrokerError("-i pcap:\(path): \(error)") }
        do {
            reader = try CaptureReader(UnsafeRawBufferPointer(start: base, count: size))
        } catch {
            Sys.unmap(base, size: size)
            Sys.close(fd)
            throw BrokerError("-i pcap:\(path): not a capture file lb can read (\(error))")
        }
        self.fd = fd
        self.base = base
        self.size = size
    }

    deinit {
        Sys.unmap(base, size: size)
        Sys.close(fd)
    }

    public mutating func receive(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int {
        guard !finished else { return 0 }
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
        while count < n, let p = reader.next() {
            frames[count] = Frame(bytes: p.data, wireLength: p.wireLength, timestampNanos: p.timestampNanos,
                                  linkType: p.linkType, input: UInt32(truncatingIfNeeded: p.interface))
            count += 1
        }
        sent += UInt64(count)
        if count < n { finished = true }
        return count
    }
}

let O_RDONLY_: Int32 = 0
