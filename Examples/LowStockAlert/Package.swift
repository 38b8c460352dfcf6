// swift-tools-version:6.0
// A second program that reuses Stockroom's repositories, as another service of the
// shop would: it depends on the Stockroom library by path.
import PackageDescription

let package = Package(
    name: "LowStockAlert",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Stockroom", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "LowStockAlert",
            dependencies: [
                .product(name: "Stockroom", package: "Stockroom"),
                .product(name: "LibPQ", package: "Stockroom"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
