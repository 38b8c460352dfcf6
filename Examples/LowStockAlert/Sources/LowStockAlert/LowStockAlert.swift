import Foundation
import LibPQ
import Stockroom

/// Prints the active products whose stock is below a threshold, lowest first, and exits
/// with status 2 when there are any — so a cron job or CI step can alert on it.
///
///     swift run --package-path Examples/LowStockAlert LowStockAlert 5
@main
struct LowStockAlert {
    static func main() async {
        let arguments = CommandLine.arguments.dropFirst()
        guard arguments.count <= 1, let threshold = Int(arguments.first ?? "5"), threshold > 0 else {
            FileHandle.standardError.write(Data("usage: LowStockAlert [threshold > 0, default 5]\n".utf8))
            exit(64)
        }
        let url = StockroomDatabase.urlFromEnvironment(ProcessInfo.processInfo.environment)
        let pool = PostgresPool(configuration: .init(connection: .init(url), maxConnections: 2))
        let stockroom = Stockroom(pool: pool)
        do {
            var low: [Product] = []
            var after: Int64 = 0
            // Walk the whole catalogue with keyset pagination, as any client of the
            // repository would.
            while true {
                let page = try await stockroom.products.list(after: after, limit: 500)
                guard let last = page.last else { break }
                low += page.filter { $0.stock < threshold }
                after = last.id
            }
            await pool.close()
            for product in low.sorted(by: { ($0.stock, $0.sku) < ($1.stock, $1.sku) }) {
                print("\(product.sku)\t\(product.stock)\t\(product.name)")
            }
            print("\(low.count) product(s) below \(threshold) in stock")
            exit(low.isEmpty ? 0 : 2)
        } catch {
            await pool.close()
            FileHandle.standardError.write(Data("LowStockAlert: \(error)\n".utf8))
            exit(1)
        }
    }
}
