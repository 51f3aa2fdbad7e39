"""Test support shared by the suites and the benchmarks: the collecting channel (tests/support/collecting.py)."""
