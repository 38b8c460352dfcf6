// swift-tools-version:6.0
// Benchmark peers that the main package must not build: PostgresNIO alone costs CI
// minutes. `make bench-nio` builds and runs this package; it depends on the main package
// by path, as a user's service would.
import PackageDescription

let package = Package(
    name: "StockroomBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Stockroom", path: ".."),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .executableTarget(
            name: "PostgresNIOPointQuery",
            dependencies: [.product(name: "PostgresNIO", package: "postgres-nio")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
