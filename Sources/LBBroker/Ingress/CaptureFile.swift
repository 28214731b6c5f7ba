import LBCore
import LBSys

/// A capture file read through a window with pread(2), never mapped: a file that shrinks, grows
/// or is replaced while it is read ends the reading the way a damaged record does. (A mapping
/// takes SIGBUS on the pages a truncation cuts off, and kills lb in the middle of a replay.)
///
/// Packets from `next(canSlide:)` point into the window. The window slides (its unused rest moves
/// to its start and more of the file is read behind it) only when the caller says no packet it
/// still uses points into it.
public struct CaptureFile: ~Copyable {
    /// Bytes read per slide: large enough that the reads cost nothing next to the packets.
    public static let windowSize = 8 << 20
    /// The largest record the window grows for (a classic pcap record of the largest caplen the
    /// reader accepts, or a pcapng block of that size with its headers and options).
    public static let largestRecord = CaptureReader.maxCaplen + (64 << 10)

    public let path: String
    let fd: Int32
    var window: UnsafeMutableRawBufferPointer
    /// bytes of the window holding file data, and bytes of the file read so far
    var filled = 0
    var fileRead = 0
    /// the file when it was opened, and its size when last looked at
    let opened: Sys.FileIdentity
    var lastSize: Int
    /// how the file changed under the reader, or a record too large to read
    var problem: String?
    var checkedAtEnd = false
    public private(set) var reader: CaptureReader

    public var size: Int { opened.size }

    /// `window`: the bytes read per slide (tests make it small to slide often).
    public init(path: String, window windowBytes: Int = CaptureFile.windowSize) throws(BrokerError) {
        self.path = path
        let fd: Int32
        do { fd = try Sys.open(path, O_RDONLY_) } catch { throw BrokerError("\(path): cannot open: \(error)") }
        let id: Sys.FileIdentity
        do { id = try Sys.identity(fd) } catch { Sys.close(fd); throw BrokerError("\(path): \(error)") }
        guard id.size > 0 else { Sys.close(fd); throw BrokerError("\(path): the file is empty") }
        var w = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, min(windowBytes, id.size)), alignment: 64)
        var filled = 0, fileRead = 0
        let r = try CaptureFile.open(fd: fd, path: path, size: id.size, window: &w, filled: &filled, fileRead: &fileRead)
        self.fd = fd
        opened = id
        lastSize = id.size
        window = w
        self.filled = filled
        self.fileRead = fileRead
        reader = r
    }

    /// Reads the start of the file (growing the window while a first pcapng section header is
    /// larger than it) and opens the reader on it.
    static func open(fd: Int32, path: String, size: Int, window: inout UnsafeMutableRawBufferPointer,
                     filled: inout Int, fileRead: inout Int) throws(BrokerError) -> CaptureReader {
        while true {
            while filled < window.count && fileRead < size {
                let n: Int
                do { n = try Sys.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: window[filled...]), at: fileRead) }
                catch { window.deallocate(); Sys.close(fd); throw BrokerError("\(path): \(error)") }
                if n == 0 { break }
                filled += n
                fileRead += n
            }
            do {
                var r = try CaptureReader(UnsafeRawBufferPointer(rebasing: window[..<filled]))
                r.atEnd = fileRead >= size
                return r
            } catch .tooShort where fileRead < size && window.count < largestRecord {
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: min(size, window.count * 2), alignment: 64)
                bigger.copyMemory(from: UnsafeRawBufferPointer(rebasing: window[..<filled]))
                window.deallocate()
                window = bigger
            } catch {
                window.deallocate()
                Sys.close(fd)
                throw BrokerError("\(path): not a capture file lb can read (\(error))")
            }
        }
    }

    deinit {
        window.deallocate()
        Sys.close(fd)
    }

    /// The next packet, or nil: at the end, at a damaged record, or (with `canSlide` false) when
    /// the window must slide before the next record can be read — call again with `canSlide`.
    public mutating func next(canSlide: Bool) -> CapturedPacket? {
        while true {
            if let p = reader.next() { return p }
            if reader.isFinished {
                checkAtEnd()
                return nil
            }
            guard canSlide, reader.needsMore > 0 else { return nil }
            slide()
        }
    }

    /// Reading has ended.
    public var finished: Bool { reader.isFinished }

    /// Why reading ended before the end of the file, if it did, with how much was not read.
    public var stoppedEarly: String? {
        let why = [problem, reader.stoppedEarly].compactMap { $0 }
        guard !why.isEmpty else { return nil }
        return why.joined(separator: "; ") + "; \(unreadBytes) of its \(size) bytes not read"
    }

    /// Bytes of the file (at its largest size seen) not read, when reading ended early.
    public var unreadBytes: Int {
        guard problem != nil || reader.stoppedEarly != nil else { return 0 }
        return max(0, max(size, lastSize) - reader.position)
    }

    /// Moves the unused rest of the window to its start and reads more of the file behind it.
    mutating func slide() {
        let keep = filled - reader.consumed
        let need = max(reader.needsMore, keep)
        if need > Self.largestRecord {
            problem = "the record at offset \(reader.position) needs \(need) bytes, more than lb reads (\(Self.largestRecord))"
            reader.slide(to: UnsafeRawBufferPointer(rebasing: window[reader.consumed..<filled]), atEnd: true)
            return
        }
        if keep > 0 {
            (window.baseAddress! + 0).copyMemory(from: window.baseAddress! + reader.consumed, byteCount: keep)
        }
        filled = keep
        if need > window.count {
            let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: max(need, min(window.count * 2, Self.largestRecord)), alignment: 64)
            bigger.copyMemory(from: UnsafeRawBufferPointer(rebasing: window[..<filled]))
            window.deallocate()
            window = bigger
        }
        if let now = try? Sys.identity(fd), now.size != size {
            lastSize = now.size
            problem = "the file's size changed from \(size) to \(now.size) bytes while it was read"
        }
        while problem == nil && filled < window.count && fileRead < size {
            let room = min(window.count - filled, size - fileRead)
            let n: Int
            do {
                n = try Sys.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: window[filled..<filled + room]), at: fileRead)
            } catch {
                problem = "reading failed at offset \(fileRead): \(error)"
                break
            }
            if n == 0 {
                problem = "the file shrank to \(fileRead) bytes while it was read"
                lastSize = fileRead
                break
            }
            filled += n
            fileRead += n
        }
        reader.slide(to: UnsafeRawBufferPointer(rebasing: window[..<filled]), atEnd: problem != nil || fileRead >= size)
    }

    /// At the end: a file whose size changed, or whose path now names another file, was not
    /// read as it is now.
    mutating func checkAtEnd() {
        guard !checkedAtEnd else { return }
        checkedAtEnd = true
        guard problem == nil else { return }
        if let now = try? Sys.identity(fd), now.size != size {
            lastSize = now.size
            problem = "the file's size changed from \(size) to \(now.size) bytes while it was read"
        } else if let there = try? Sys.identity(path: path), there.device != opened.device || there.inode != opened.inode {
            problem = "\(path) was replaced by another file while it was read"
        }
    }
}

let O_RDONLY_: Int32 = 0
