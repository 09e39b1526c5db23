"""Merged logs: line models and the shared filter (models.py), classifying raw lines (parse.py),
joining them into entries and resuming a stream (join.py), the reader inbox (inbox.py), the
merged tail over an orchestrator's log streams (source.py) and that tail run in a child process
(worker.py)."""
