"""The Docker Compose orchestrator: a compose project on a Docker Engine behind the same
contract as Kubernetes (backends/orchestrator.py)."""
