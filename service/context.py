"""Everything a process of the service shares: settings, database, storage, keys and the job dispatcher.

One ``ServiceContext`` per process (API or worker); created from settings, never from globals, so tests can
run several against different databases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.cycle import CycleRules
from service.db.engine import create_all, make_engine, make_session_factory
from service.security import Keyring
from service.storage import LocalEncryptedStorage, MediaStorage

log = logging.getLogger(__name__)


class ServiceContext:
    def __init__(self, settings: Settings, engine: Engine | None = None, create_schema: bool = True) -> None:
        settings.validate_secrets()
        self.settings = settings
        if settings.effective_database_url.startswith("sqlite"):
            settings.var_dir.mkdir(parents=True, exist_ok=True)
        self.engine = engine or make_engine(settings.effective_database_url)
        if create_schema:
            create_all(self.engine)
        self.session_factory: sessionmaker[Session] = make_session_factory(self.engine)
        self.storage: MediaStorage = LocalEncryptedStorage(settings.effective_media_dir, settings.media_key_bytes)
        self.keyring = Keyring(settings.media_key_bytes, settings.signing_key)
        self.rules = CycleRules(
            validity_months=settings.validity_months,
            due_soon_days=settings.due_soon_days,
            birthday_month_regions=frozenset(settings.birthday_month_regions),
        )
        # Called with a session id after the transaction that queued it has committed.
        self.enqueue: Callable[[str], None] = lambda _sid: None

    @contextmanager
    def db(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any exception."""
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
