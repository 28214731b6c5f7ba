import CLBRing
import Glibc
import LBSys
import Synchronization

/// A consumer's (or tap's) mapping of one ring, made from the descriptors lb sent.
/// Checks the layout lb describes before trusting any offset in it.
public struct AttachedRing: ~Copyable {
    let dataMap: Mapping
    let controlMap: Mapping?
    let controlBase: UnsafeMutableRawPointer?
    public let info: lb_ring_info

    public enum Problem: Error, CustomStringConvertible {
        case badLayout(String)
        case system(SysError)
        public var description: String {
            switch self {
            case .badLayout(let s): "ring layout rejected: \(s)"
            case .system(let e): e.description
            }
        }
    }

    /// Maps DATA read-only and CONTROL (if given) read-write. Closes neither descriptor.
    public init(dataFD: Int32, dataSize: Int, controlFD: Int32?, controlSize: Int) throws(Problem) {
        let realSize: Int
        do { realSize = try Sys.fileSize(dataFD) } catch { throw .system(error) }
        guard dataSize >= MemoryLayout<lb_ring_info>.size, dataSize <= realSize else {
            throw .badLayout("data region of \(realSize) bytes, \(dataSize) announced")
        }
        let data: Mapping
        do { data = try Mapping(fd: dataFD, size: dataSize, writable: false) } catch { throw .system(error) }
        let i = data.base.assumingMemoryBound(to: lb_ring_info.self).pointee
        if let problem = Self.layoutProblem(i, dataSize: dataSize) { throw .badLayout(problem) }
        var control: Mapping? = nil
        if let controlFD {
            guard controlSize >= Int(lb_control_size(i.lane_count)) else { throw .badLayout("control region too small") }
            do { control = try Mapping(fd: controlFD, size: controlSize, writable: true) } catch { throw .system(error) }
        }
        controlBase = control?.base
        dataMap = data
        controlMap = control
        info = i
    }

    static func layoutProblem(_ i: lb_ring_info, dataSize: Int) -> String? {
        guard i.magic == LB_RING_MAGIC else { return "bad magic" }
        guard i.version == LB_RING_VERSION else { return "version \(i.version), this consumer speaks \(LB_RING_VERSION)" }
        guard i.desc_size == UInt32(MemoryLayout<lb_desc>.size), i.lane_count >= 1, i.lane_count <= LB_MAX_LANES,
              i.desc_count >= 1, i.desc_count & (i.desc_count - 1) == 0,
              i.data_size > 0, i.data_size & (i.data_size - 1) == 0,
              i.desc_offset >= UInt64(MemoryLayout<lb_lane_header>.size),
              i.desc_offset + UInt64(i.desc_count) * 64 <= i.data_offset,
              i.data_offset + i.data_size <= i.lane_stride,
              i.lane_offset + UInt64(i.lane_count) * i.lane_stride <= UInt64(dataSize) else {
            return "inconsistent sizes"
        }
        return nil
    }

    public var lanes: Int { Int(info.lane_count) }

    public func lane(_ k: Int) -> LaneConsumer {
        precondition(k >= 0 && k < lanes)
        let base = UnsafeRawPointer(dataMap.base) + Int(info.lane_offset) + k * Int(info.lane_stride)
        let control = controlBase.map { $0 + Int(LB_CONTROL_LANES) + k * MemoryLayout<lb_lane_control>.size }
        return LaneConsumer(laneBase: base, control: control, info: info)
    }

    /// LB_STATE_* as lb last stored it.
    public var state: UInt32 {
        (UnsafeRawPointer(dataMap.base) + MemoryLayout<lb_ring_info>.offset(of: \.state)!)
            .assumingMemoryBound(to: Atomic<UInt32>.self).pointee.load(ordering: .acquiring)
    }

    public var group: String {
        var g = info.group
        return withUnsafeBytes(of: &g) { AttachProtocol.cString($0) }
    }

    /// Writes the consumer's report into the CONTROL region (lb shows it in its stats).
    public func report(processed: UInt64, lossGaps: UInt64 = 0, lossAcks: UInt64 = 0) {
        guard let c = controlBase else { return }
        let p = c.assumingMemoryBound(to: Atomic<UInt64>.self)
        p[0].store(UInt64(UInt32(bitPattern: getpid())), ordering: .relaxed)
        p[1].store(Sys.wallNanos(), ordering: .relaxed)
        p[2].store(processed, ordering: .relaxed)
        p[3].store(lossGaps, ordering: .relaxed)
        p[4].store(lossAcks, ordering: .relaxed)
    }
}
