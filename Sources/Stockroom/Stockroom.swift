// Filled in by the Stockroom work.
