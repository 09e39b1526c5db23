"""The Kubernetes orchestrator: `KubeAdapter` (adapter.py) implements backends.orchestrator's
contract over the blocking `kubernetes` client (client.py), list-then-watch (watch.py),
API JSON -> models (convert.py), kubectl's rollout rules (rollout_rules.py) and container log
streams (log_stream.py). The only package that imports `kubernetes`; nothing outside it sees
a Kubernetes type."""
