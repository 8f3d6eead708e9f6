"""strataflow's benchmarks (`make bench`, `python -m bench`).

Scheduling quality, orchestration overhead, command-line latency, the sample platform.

See bench/README.md. Every figure is a ratio against a baseline measured in the same run.
"""
