/// What every harness shares: turning libFuzzer's input into a check's bytes, and
/// starting libFuzzer's driver.

/// Runs `check` on one input; a broken invariant is a crash, which libFuzzer saves as a
/// reproducer.
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int, _ check: ([UInt8]) -> String?) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let failure = check(bytes) { fatalError("invariant broken: \(failure)") }
    return 0
}

/// SwiftPM links an executable's entry point as `<module>_main` on Linux, so libFuzzer's
/// own `main` is not used: each harness's entry point hands over to its driver here.
public func runFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
