"""Benchmarks of canary-engine (run by hand, never by the test suite)."""
