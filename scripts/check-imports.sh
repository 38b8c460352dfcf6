#!/usr/bin/env bash
# Fails when a target imports a module it does not name among its dependencies in
# Package.swift (run by `make test`).
#
# Such an import compiles, since the module comes along with another dependency, but
# SwiftPM then does not recompile the target when that module changes: its build
# graph follows declared dependencies only (swiftlang/swift-package-manager#10483).
# Object files compiled against the old module stay in the binary. For a change that
# keeps the symbols and changes the calling convention (say, a public function made
# `nonisolated(nonsending)`), the result links and crashes: docs/NONSENDING-CRASH.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

swift package dump-package | python3 -c '
import json, os, re, sys

# Modules of the toolchain and the system, not of any package.
system = {"Foundation", "FoundationEssentials", "FoundationNetworking", "Dispatch", "Glibc",
          "Darwin", "Musl", "Synchronization", "Testing", "XCTest", "os"}
package = json.load(sys.stdin)
failed = False
for target in package["targets"]:
    if target["type"] == "system":
        continue
    name = target["name"]
    declared = set()
    for dependency in target["dependencies"]:
        kind = next(iter(dependency))
        declared.add(dependency[kind][0])  # a target, or a product named as its module
    folder = target.get("path") or os.path.join("Tests" if target["type"] == "test" else "Sources", name)
    imported = {}
    for root, _, files in os.walk(folder):
        for file in files:
            if not file.endswith(".swift"):
                continue
            path = os.path.join(root, file)
            with open(path, encoding="utf-8") as source:
                # Imports open a file: read up to the first line of anything else, so
                # that code quoted in a string literal further down is not taken for one.
                for line in source:
                    stripped = line.strip()
                    if not stripped or stripped.startswith(("//", "/*", "*", "#if", "#else", "#elseif", "#endif")):
                        continue
                    match = re.match(r"(?:@testable\s+|@_spi\(\w+\)\s+|@preconcurrency\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_]\w*)", stripped)
                    if not match:
                        break
                    imported.setdefault(match.group(1), path)
    for module, path in sorted(imported.items()):
        if module not in declared and module not in system:
            print(f"{path}: imports {module}, which target {name} does not name in Package.swift", file=sys.stderr)
            failed = True
sys.exit(1 if failed else 0)
'
echo "imports: every target names every module it imports"
