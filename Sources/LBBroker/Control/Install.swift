import Glibc
import LBSys

extension Operations {
    /// Sets up the operator side of a run: failover, stats requests, the metrics endpoint.
    static func install(config: BrokerConfig, isLive: Bool, server: ControlServer, records: [RingRecord],
                        shared: SharedState, log: @escaping @Sendable (String) -> Void) throws(BrokerError) -> Operations {
        let after = config.failover.seconds(live: isLive)
        let ops = Operations(records: records, shared: shared, input: config.input.name, failoverAfterSeconds: after, log: log)
        server.statsText = { ops.statsJSON() }
        if let spec = config.metricsAddress {
            let (address, port) = try parseListenAddress(spec)
            do {
                let got = try ops.serveMetrics(address: address, port: port)
                let host = address.contains(":") ? "[\(address)]" : address
                log("Prometheus metrics at http://\(host):\(got)/metrics")
            } catch {
                throw BrokerError("--metrics \(spec): \(error)")
            }
        }
        return ops
    }

    /// ADDR:PORT, or [ADDR]:PORT for IPv6 (":PORT" or "PORT" alone listen on 127.0.0.1).
    public static func parseListenAddress(_ spec: String, option: String = "--metrics") throws(BrokerError) -> (String, UInt16) {
        let usage = "\(option) \(spec): expected ADDR:PORT, e.g. 127.0.0.1:9917, or [ADDR]:PORT for IPv6, e.g. [::1]:9917"
        var address = "127.0.0.1", portText = spec
        if spec.hasPrefix("[") {
            guard let close = spec.firstIndex(of: "]"), spec[spec.index(after: close)...].hasPrefix(":") else { throw BrokerError(usage) }
            address = String(spec[spec.index(after: spec.startIndex)..<close])
            portText = String(spec[spec.index(close, offsetBy: 2)...])
            var probe = in6_addr()
            guard inet_pton(AF_INET6, address, &probe) == 1 else { throw BrokerError(usage) }
        } else {
            if let colon = spec.lastIndex(of: ":") {
                let a = String(spec[..<colon])
                if !a.isEmpty { address = a == "localhost" ? "127.0.0.1" : a }
                portText = String(spec[spec.index(after: colon)...])
            }
            var probe = in_addr()
            guard inet_pton(AF_INET, address, &probe) == 1 else { throw BrokerError(usage) }
        }
        guard let port = UInt16(portText) else { throw BrokerError(usage) }
        return (address, port)
    }
}
