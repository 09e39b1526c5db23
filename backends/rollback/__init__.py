"""Rollbacks: planning (planner.py, kubectl's `rollout undo` rules: candidates, target revision,
warnings, blockers), executing under the release lock (engine.py, through the orchestrator
contract) and the pod-template diff a human reads (diff.py)."""
