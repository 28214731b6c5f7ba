import Glibc

/// How busy the machine is: measurements on 2 cores mean little while something else runs.
public enum Machine {
    /// Busy fraction of all CPUs over `millis` milliseconds (from /proc/stat).
    public static func busy(millis: Int = 300) -> Double {
        guard let a = sample() else { return 0 }
        usleep(UInt32(millis * 1000))
        guard let b = sample() else { return 0 }
        let total = Double(b.total - a.total), idle = Double(b.idle - a.idle)
        return total > 0 ? 1 - idle / total : 0
    }

    /// Waits until the machine is idle (below `threshold` busy) or `maxSeconds` pass; returns
    /// the last busy fraction seen.
    public static func waitQuiet(threshold: Double = 0.05, maxSeconds: Double = 300) -> Double {
        var waited = 0.0
        var b = busy()
        while b > threshold && waited < maxSeconds {
            usleep(700_000)
            waited += 1
            b = busy()
        }
        return b
    }

    /// CPU time of the calling thread, in nanoseconds.
    public static func threadCPUNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    static func sample() -> (total: UInt64, idle: UInt64)? {
        guard let fp = fopen("/proc/stat", "r") else { return nil }
        defer { fclose(fp) }
        var line = [CChar](repeating: 0, count: 512)
        guard fgets(&line, 512, fp) != nil else { return nil }
        let fields = String(cString: line).split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard fields.count >= 5 else { return nil }
        return (fields.reduce(0, +), fields[3] + fields[4])   // idle + iowait
    }
}
