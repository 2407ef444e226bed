"""Database: SQLAlchemy 2 models (service.certification.models) and engine/session factories
(service.infra.db.engine)."""
