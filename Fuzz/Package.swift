// swift-tools-version:6.0
// libFuzzer harnesses, one per parser that reads what a client or a migration file
// controls. Built only by `make fuzz`, with `-sanitize=fuzzer,address`: the main package
// never builds them. Each calls the same invariant checks (SPI `Fuzzing`) that
// `make test` runs over the committed corpus in Tests/Fuzz/Corpus/.
import PackageDescription

let settings: [SwiftSetting] = [.swiftLanguageMode(.v6), .unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "StockroomFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Stockroom", path: ".."),
    ],
    targets: [
        .target(name: "FuzzSupport", swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(name: "FuzzRequestParser", dependencies: ["FuzzSupport", .product(name: "StockroomServer", package: "Stockroom")], swiftSettings: settings),
        .executableTarget(name: "FuzzInlineArguments", dependencies: ["FuzzSupport", .product(name: "StockroomServer", package: "Stockroom")], swiftSettings: settings),
        .executableTarget(name: "FuzzJSON", dependencies: ["FuzzSupport", .product(name: "StockroomServer", package: "Stockroom")], swiftSettings: settings),
        .executableTarget(name: "FuzzMigrationLexer", dependencies: ["FuzzSupport", .product(name: "Migrations", package: "Stockroom")], swiftSettings: settings),
    ]
)
