"""Benchmarks of billing paths; ``manage.py benchmark_billing`` runs them and prints their figures."""
