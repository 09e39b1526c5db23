"""Rollbacks: the engine (engine.py, kubectl's `rollout undo` semantics through the orchestrator
contract) and the pod-template diff a human reads (diff.py)."""
