"""The platform's health picture: workloads from the orchestrator plus health probes, with the
deployment guide's alert thresholds (monitor.py), and `bva status` (report.py)."""
