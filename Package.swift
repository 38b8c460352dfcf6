// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .treatAllWarnings(as: .error),
]

let logging = Target.Dependency.product(name: "Logging", package: "swift-log")

let package = Package(
    name: "Stockroom",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LibPQ", targets: ["LibPQ"]),
        .library(name: "Migrations", targets: ["Migrations"]),
        .library(name: "Stockroom", targets: ["Stockroom"]),
        .library(name: "StockroomDelivery", targets: ["StockroomDelivery"]),
        .library(name: "StockroomServer", targets: ["StockroomServer"]),
        .executable(name: "stockroom", targets: ["StockroomCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        // The operations listener (/healthz, /readyz, /metrics). No swift-configuration:
        // flags come from the argument parser.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // TLS for SMTP (smtps and STARTTLS) and for the protocol (--tls-cert). Already
        // resolved through async-http-client; named here because both use it directly.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // C libraries. Only the Swift targets wrapping them import these; no public API
        // exposes their types.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),

        .target(name: "LibPQ", dependencies: ["CLibPQ", logging], swiftSettings: strict),
        .target(name: "Migrations", dependencies: ["LibPQ", "CSodium", logging], swiftSettings: strict),
        .target(name: "Stockroom", dependencies: ["LibPQ", "CSodium", logging], swiftSettings: strict),
        // Webhook delivery: above Stockroom, below the server, so `stockroom worker` runs
        // it without the protocol.
        .target(
            name: "StockroomDelivery",
            dependencies: [
                "Stockroom", "LibPQ", "CSodium", logging,
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "StockroomServer",
            dependencies: [
                "Stockroom", "StockroomDelivery", "LibPQ", "Migrations", logging,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Every module a target imports is named here, even one that comes along with
        // another: SwiftPM recompiles a target only when a module it names changes, so a
        // change to one reached only through another leaves stale code behind
        // (docs/NONSENDING-CRASH.md). scripts/check-imports.sh holds this.
        .executableTarget(
            name: "StockroomCLI",
            dependencies: [
                "StockroomServer", "StockroomDelivery", "Stockroom", "Migrations", "LibPQ", logging,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),

        .testTarget(name: "LibPQTests", dependencies: ["LibPQ", logging], swiftSettings: strict),
        .testTarget(name: "MigrationsTests", dependencies: ["Migrations", "LibPQ", logging], swiftSettings: strict),
        .testTarget(name: "StockroomTests", dependencies: ["Stockroom", "Migrations", "LibPQ", logging], swiftSettings: strict),
        .testTarget(
            name: "StockroomServerTests",
            dependencies: [
                "StockroomServer", "StockroomDelivery", "Stockroom", "Migrations", "LibPQ", logging,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
    ]
)
