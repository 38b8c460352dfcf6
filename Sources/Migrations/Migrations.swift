// Filled in by the Migrations work.
