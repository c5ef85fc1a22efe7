"""CLI commands per stage; each module exposes register(main)."""
