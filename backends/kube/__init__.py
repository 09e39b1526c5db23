"""The Kubernetes orchestrator: `KubeAdapter` (adapter.py, on base.py's plumbing) implements
backends.orchestrator's contract over the blocking `kubernetes` client (client.py),
list-then-watch (watch.py), API JSON -> models (convert.py), kubectl's rollout rules
(rollout_rules.py), the canary Deployment and Lease shapes (release_objects.py) and container
log streams (log_stream.py). The only package that imports `kubernetes`; nothing outside it
sees a Kubernetes type."""
