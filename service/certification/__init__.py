"""The certification core: sessions, jobs, decisions applied, the annual cycle, certificates, roster, retention.

Imports ``pipelines``, ``proxy_auth`` and ``service.infra`` only: never FastAPI, Celery or argparse."""
