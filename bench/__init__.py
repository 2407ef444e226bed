"""Measurement scripts (run as files: python bench/NAME.py); results in bench/results/*.json."""
