import ArgumentParser

/// `stockroom bench …`: the load generators `make bench` drives.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load generators for make bench.",
        subcommands: [BenchOrders.self, BenchPointQuery.self]
    )
}

/// Latencies in nanoseconds, summarized.
struct LatencySummary {
    let count: Int
    let seconds: Double
    let p50: Double
    let p99: Double
    let p999: Double

    init(_ latencies: [UInt64], seconds: Double) {
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1_000_000
        }
        count = sorted.count
        self.seconds = seconds
        p50 = percentile(0.50)
        p99 = percentile(0.99)
        p999 = percentile(0.999)
    }

    var line: String {
        let rate = Double(count) / seconds
        return "throughput=\(Int(rate.rounded())) per_second p50_ms=\(format(p50)) p99_ms=\(format(p99)) p999_ms=\(format(p999)) count=\(count)"
    }

    private func format(_ value: Double) -> String {
        String(Double(Int(value * 1000)) / 1000)
    }
}
