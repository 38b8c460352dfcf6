internal import CLibPQ
import Logging

/// Routes the server's notices (RAISE NOTICE, warnings) to the connection's logger
/// instead of libpq's default of printing them on stderr.
final class NoticeSink: Sendable {
    let logger: Logger
    init(logger: Logger) { self.logger = logger }

    func receive(_ result: OpaquePointer) {
        let field = { (code: Character) -> String? in
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        let severity = field("V") ?? field("S") ?? "NOTICE"
        var metadata: Logger.Metadata = ["postgres.severity": "\(severity)"]
        if let state = field("C") { metadata["postgres.sqlstate"] = "\(state)" }
        // A library logs at info or below: notices are the server talking, not our errors.
        let level: Logger.Level = severity == "DEBUG" ? .debug : .info
        logger.log(level: level, "\(field("M") ?? "")", metadata: metadata)
    }
}

let noticeReceiver: PQnoticeReceiver = { context, result in
    guard let context, let result else { return }
    Unmanaged<NoticeSink>.fromOpaque(context).takeUnretainedValue().receive(result)
}
