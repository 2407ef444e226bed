"""Database: the declarative Base, engine and session factories (service.infra.db.engine), Alembic
(service.infra.db.migrate). The models live with their owners (service.certification.models, each feature's
models.py); service/schema.py imports them all."""
