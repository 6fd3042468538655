"""Benchmarks: real etcd 3.4 and etcdlite side by side on one machine, each figure with its ratio.

`python -m bench.etcd_perf --help` is the entry; bench/README.md says how long each part takes and
records the figures measured. Nothing here is imported by the cluster's processes or the tests'
fixtures; only `tests/unit/test_bench_*.py` import the pure helpers.
"""
