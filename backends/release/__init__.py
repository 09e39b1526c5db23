"""Releases: the plan and gates (plan.py), the driver (driver.py), steering a release from any
terminal (control.py), the release lock (lock.py) and what screens see (models.py). Uses the
orchestrator contract and metrics sources, never an SDK."""
