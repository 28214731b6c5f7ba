// swift-tools-version:6.1
import PackageDescription

// flowlog-bench: lb flowlog's connection tracking (LBFlow) on one core over a real trace mix,
// and its memory per tracked connection. A package of its own so that it builds in seconds,
// without the data-path benchmark's dependencies.
let rootIdentity: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)   // "Package.swift", "flowlog", "bench"
    return String(parts.last ?? "lb").lowercased()
}()

let package = Package(
    name: "flowlog-bench",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "../..")],
    targets: [
        .executableTarget(
            name: "flowlog-bench",
            dependencies: [
                .product(name: "LBFlow", package: rootIdentity),
                .product(name: "LBCore", package: rootIdentity),
            ]),
    ]
)
