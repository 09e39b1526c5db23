"""The append-only, hash-chained journal of every mutating action: the record format and its
checks (records.py), secret scrubbing (scrub.py) and the file itself (store.py). Imports only
the stdlib and backends.errors/config values."""
