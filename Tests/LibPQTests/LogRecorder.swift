import Logging
import Synchronization

/// A log handler that keeps what it receives, to check what a component logs.
final class LogRecorder: LogHandler, Sendable {
    struct Entry: Sendable { var level: Logger.Level; var message: String }
    private let entries = Mutex<[Entry]>([])

    var messages: [Entry] { entries.withLock { $0 } }

    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        entries.withLock { $0.append(Entry(level: event.level, message: event.message.description)) }
    }
}
