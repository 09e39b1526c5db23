"""Merged logs: line models and the shared filter (models.py), parsing (parse.py), the merged
tail over an orchestrator's log streams (source.py) and that tail run in a child process
(worker.py)."""
