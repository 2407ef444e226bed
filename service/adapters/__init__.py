"""How the outside reaches the core: HTTP (FastAPI), the command line, workers (threads, processes, Celery)."""
