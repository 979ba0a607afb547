"""Project tests use the fixtures shipped in core.testing (registered via pytest11)."""
