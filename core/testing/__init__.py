"""Test support shipped with Dovetail for integrators: fixtures and a conformance suite."""
