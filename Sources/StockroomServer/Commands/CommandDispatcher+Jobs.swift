import Stockroom
import StockroomDelivery

/// JOB.*: admins see the work the outbox handed to the outside world — refunds, e-mails —
/// and put a dead job back in line once its cause is fixed. Dead jobs are otherwise
/// deleted with the rest a week after they finished (`JobWorker.Configuration.retention`).
extension CommandDispatcher {
    static let jobCommands: [Command] = [
        Command(name: "JOB.LIST", arity: -1, access: .admin) { dispatcher, _, arguments in
            let options = try arguments.options(from: 0, allowed: ["STATE", "AFTER", "LIMIT"])
            var state: JobState?
            if let index = options["STATE"] {
                let text = try arguments.string(index, field: "state").lowercased()
                guard let parsed = JobState(rawValue: text) else { throw CommandError.invalid("state", "must be one of pending, done, dead") }
                state = parsed
            }
            let limit = try limit(arguments, options)
            let jobs = try await dispatcher.jobs.list(state: state, after: try after(arguments, options), limit: limit)
            return page(jobs, limit: limit, id: \.id)
        },
        Command(name: "JOB.RETRY", arity: 2, access: .admin) { dispatcher, _, arguments in
            json(try await dispatcher.jobs.retry(id: try arguments.id(0)))
        },
    ]
}
