"""copy stage."""
