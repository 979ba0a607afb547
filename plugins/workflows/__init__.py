"""Workflows as admin-edited YAML files in ``config/workflows/``: checked, shown, simulated, reloaded."""
