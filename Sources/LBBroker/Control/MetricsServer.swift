import Glibc
import LBSys

/// A very small HTTP/1.1 server for Prometheus: `GET /metrics` answers the text exposition
/// format, anything else 404. Non-blocking accept, read and write, polled from the control
/// thread; one request per connection (Connection: close). A request must arrive within 2 s and
/// fit in 8 KiB, and the client must take the answer within 2 s more. At the client cap the
/// oldest connection gives way to the new one, so idle or trickling connections (slowloris)
/// cannot keep a scrape out; no client ever blocks the control thread.
final class MetricsServer {
    struct Client {
        let fd: Int32
        var request: [UInt8]
        var deadline: UInt64
        /// the answer, once there is one, and how much of it went out
        var response: [UInt8]? = nil
        var sent = 0
    }

    let fd: Int32
    let port: UInt16
    var clients: [Client] = []
    /// requests answered (shown as lb_metrics_scrapes_total)
    var scrapes: UInt64 = 0
    static let maxClients = 64

    init(address: String, port: UInt16) throws(SysError) {
        (fd, self.port) = try Sys.listenTCP(address: address, port: port)
    }

    deinit {
        for c in clients { Sys.close(c.fd) }
        Sys.close(fd)
    }

    /// Accepts, reads and answers whatever is ready (never waits for a client).
    /// `body(openMetrics)` renders the exposition: OpenMetrics when the client's Accept header
    /// asks for it (as Prometheus does), the classic text format otherwise.
    func serve(_ body: (Bool) -> String) {
        while let c = try? Sys.accept(fd) {
            if clients.count >= Self.maxClients {             // the oldest gives way
                Sys.close(clients[0].fd)
                clients.removeFirst()
            }
            clients.append(Client(fd: c, request: [], deadline: Sys.monoNanos() &+ 2_000_000_000))
        }
        guard !clients.isEmpty else { return }
        var keep: [Client] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let now = Sys.monoNanos()
        for var c in clients {
            if c.response == nil {
                var done = false
                while !done {
                    let n = buffer.withUnsafeMutableBytes { b in try? Sys.read(c.fd, into: b) }
                    guard let got = n ?? nil else { break }             // EAGAIN (or an error: closed below)
                    if got == 0 { done = true; break }
                    c.request += buffer[0..<got]
                    if c.request.count > 8192 { done = true }
                }
                if let path = Self.requestPath(c.request) {
                    c.response = answer(path: path, openMetrics: Self.acceptsOpenMetrics(c.request), body)
                    c.deadline = now &+ 2_000_000_000
                } else if done || now > c.deadline {
                    Sys.close(c.fd)
                    continue
                }
            }
            if var r = c.response {
                let n = r.withUnsafeMutableBytes { b in Glibc.send(c.fd, b.baseAddress! + c.sent, b.count - c.sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                if n > 0 { c.sent += n }
                let blocked = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                if c.sent == r.count || (n < 0 && !blocked) || now > c.deadline {
                    Sys.close(c.fd)
                    continue
                }
                c.response = r
            }
            keep.append(c)
        }
        clients = keep
    }

    /// The path of a complete GET request (headers ended), or nil.
    static func requestPath(_ r: [UInt8]) -> String? {
        guard r.count >= 4 else { return nil }
        var end = -1
        for i in 0...(r.count - 4) where r[i] == 13 && r[i + 1] == 10 && r[i + 2] == 13 && r[i + 3] == 10 { end = i; break }
        guard end >= 0 else { return nil }
        let line = r.prefix { $0 != 13 }.split(separator: 32)
        guard line.count >= 2 else { return "" }
        guard String(decoding: line[0], as: UTF8.self) == "GET" else { return "" }
        return String(decoding: line[1], as: UTF8.self)
    }

    /// The request's Accept header names application/openmetrics-text.
    static func acceptsOpenMetrics(_ r: [UInt8]) -> Bool {
        let text = String(decoding: r, as: UTF8.self).lowercased()
        for line in text.split(separator: "\r\n") where line.hasPrefix("accept:") {
            if line.contains("application/openmetrics-text") { return true }
        }
        return false
    }

    func answer(path: String, openMetrics: Bool, _ body: (Bool) -> String) -> [UInt8] {
        let response: String
        if path == "/metrics" || path.hasPrefix("/metrics?") {
            scrapes += 1
            let text = body(openMetrics)
            let type = openMetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8" : "text/plain; version=0.0.4; charset=utf-8"
            response = "HTTP/1.1 200 OK\r\nContent-Type: \(type)\r\nContent-Length: \(text.utf8.count)\r\nConnection: close\r\n\r\n" + text
        } else {
            let text = "lb serves Prometheus metrics at /metrics\n"
            response = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: \(text.utf8.count)\r\nConnection: close\r\n\r\n" + text
        }
        return Array(response.utf8)
    }
}
