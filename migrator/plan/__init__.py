"""plan: inventory, introspection, preflight, DDL rewrite, chunking and routes -> a plan file."""
