@_spi(Fuzzing) import StockroomServer

/// libFuzzer calls this with each input: any invariant that breaks is a crash, which it
/// saves as a reproducer.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let failure = ServerFuzzChecks.inlineArguments(bytes) { fatalError("invariant broken: \(failure)") }
    return 0
}

/// SwiftPM links an executable's entry point as `<module>_main` on Linux; libFuzzer's
/// own `main` is not used, so this one hands over to its driver.
@_cdecl("FuzzInlineArguments_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { fuzz($0, $1) }
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
