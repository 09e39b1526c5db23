"""HTTP health: the Actuator prober (prober.py), its values (models.py), TLS (tls.py) and the
prober run on its own thread (thread.py). Imports httpx, never an orchestrator."""
