"""Database: SQLAlchemy 2 models (service.db.models) and engine/session factories (service.db.engine)."""
