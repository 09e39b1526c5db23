"""The platform file: its schema (models, values, rollout), loading and error wording (loader),
the summary `bva config check` prints, and the default platform file (platforms/).
Imports only pydantic and the stdlib: every other package may import it."""
