"""The append-only, hash-chained journal of every mutating action (store.py). Imports only the
stdlib and backends.errors/config values."""
