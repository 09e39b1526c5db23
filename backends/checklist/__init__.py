"""The pre-deploy checklist: automated readiness checks, named sign-offs, one Go/No-Go."""
