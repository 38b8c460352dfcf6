// Filled in by the StockroomServer work.
