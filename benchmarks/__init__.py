"""Benchmarks of the portal's heavy paths; each is a ``manage.py benchmark_*`` command that prints figures.

This app sits above every domain app (it may import any of them; none imports it) and has no
models. ``benchmarks.harness`` holds what the benchmarks share: timing, the results files under
``benchmarks/results/`` (git-ignored), the database URL for the processes a benchmark starts, and
dropping a benchmark tenant through ``customers.purge.tenant_purge``.
"""
