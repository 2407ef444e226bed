"""Infrastructure: settings, clock, database engine, encrypted media storage, keys and masking, logging and metrics.

Imports nothing else from ``service``."""
