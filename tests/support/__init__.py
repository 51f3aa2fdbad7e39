"""Test support shared by the suites and the benchmarks: the collecting channel (collecting.py),
booking steps any chat client walks (steps.py), the CLI run in process (cli.py)."""
