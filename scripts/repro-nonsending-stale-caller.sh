#!/usr/bin/env bash
# Reproducer for docs/NONSENDING-CRASH.md, with Swift 6.3.1 on Linux: a function made `nonisolated(nonsending)` in module A, called from module C
# that imports A without naming it in Package.swift (it comes along with B). SwiftPM does
# not recompile C, and C's stale call passes its arguments where A now expects the
# caller's isolation: a crash, or a wrong value, at run time.
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
mkdir -p Sources/A Sources/B Sources/C
cat > Package.swift <<'SWIFT'
// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "Repro",
    targets: [
        .target(name: "A"),
        .target(name: "B", dependencies: ["A"]),
        .executableTarget(name: "C", dependencies: ["B"]),  // imports A as well
    ]
)
SWIFT
cat > Sources/B/B.swift <<'SWIFT'
import A
public func makeCounter() -> Counter { Counter() }
SWIFT
cat > Sources/C/main.swift <<'SWIFT'
import A
import B

func run() async {
    // Four words, passed indirectly: the callee reads it through a pointer.
    let request = Request(name: "four", values: [1, 2, 3, 4], note: nil)
    print("count:", await makeCounter().count(request))
}
await run()
SWIFT
source() {
    cat > Sources/A/A.swift <<SWIFT
public struct Request: Sendable {
    public var name: String
    public var values: [Int]
    public var note: String?
    public init(name: String, values: [Int], note: String?) { (self.name, self.values, self.note) = (name, values, note) }
}

public final class Counter: Sendable {
    public init() {}
    $1 public func count(_ request: Request) async -> Int { request.values.count }
}
SWIFT
}
source ""
swift build 2>&1 | tail -1
echo "== plain async:"; .build/debug/C
nm .build/debug/C | grep ' T .*7Counter.*count' | head -1
source "nonisolated(nonsending)"
swift build 2>&1 | grep -E "Compiling|Build"
echo "== nonisolated(nonsending), C not recompiled:"
if output=$(.build/debug/C 2>&1); then echo "$output"; else echo "exit $?: $(echo "$output" | grep -m1 -E 'crashed|Fatal')"; fi
nm .build/debug/C | grep ' T .*7Counter.*count' | head -1
touch Sources/C/main.swift
swift build 2>&1 | grep -E "Compiling|Build"
echo "== after C is recompiled:"; .build/debug/C
