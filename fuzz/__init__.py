"""Fuzzing helpers: hypothesis settings shared by the fuzz tests, and atheris harnesses (``scripts/fuzz.sh``)."""
