"""Everything a process of the service shares: settings, database, storage, keys and the job dispatcher.

One ``ServiceContext`` per process (API or worker); created from settings, never from globals, so tests can
run several against different databases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, MetaData
from sqlalchemy.orm import Session, sessionmaker

from service.certification.audit_anchor import STORE_INFO
from service.certification.contract import FeatureHooks
from service.certification.cycle import CycleRules
from service.infra.config import Settings
from service.infra.db.engine import create_all, make_engine, make_session_factory
from service.infra.security import Keyring
from service.infra.storage import LocalEncryptedStorage, MediaStorage

log = logging.getLogger(__name__)


def open_storage(settings: Settings) -> MediaStorage:
    """The media store the settings name: a bucket (PENSION_CERT_MEDIA_URL=s3://...) or the local folder."""
    if not settings.storage.media_url:
        return LocalEncryptedStorage(
            settings.effective_media_dir,
            settings.media_key_bytes,
            settings.previous_media_keys_bytes,
            # Ready only with room for one certification's uploads (a card and a video at their limits).
            min_free_bytes=settings.uploads.max_image_bytes + settings.uploads.max_video_bytes,
        )
    from service.infra.storage_s3 import S3EncryptedStorage, S3Location, S3Options  # lazy: boto3 only when configured

    options = S3Options(
        endpoint_url=settings.storage.s3_endpoint_url or None,
        region=settings.storage.s3_region or None,
        access_key_id=settings.storage.s3_access_key_id or None,
        secret_access_key=settings.storage.s3_secret_access_key or None,
        addressing_style=settings.storage.s3_addressing_style,
    )
    location = S3Location.parse(settings.storage.media_url)
    return S3EncryptedStorage(
        location, settings.media_key_bytes, options, previous_keys=settings.previous_media_keys_bytes
    )


class ServiceContext:
    def __init__(self, settings: Settings, engine: Engine | None = None, *, schema: MetaData | None) -> None:
        """`schema`: the tables to create (embedded databases, tests), ``service.schema.metadata`` from the
        composition root (the core cannot import the features' tables); None where the database is migrated
        (Alembic) or made already. Required, so that no caller creates only the tables imported so far."""
        settings.validate_secrets()
        self.settings = settings
        if settings.effective_database_url.startswith("sqlite"):
            settings.var_dir.mkdir(parents=True, exist_ok=True)
        self.engine = engine or make_engine(settings.effective_database_url)
        if schema is not None:
            create_all(self.engine, schema)
        self.session_factory: sessionmaker[Session] = make_session_factory(self.engine)
        self.storage: MediaStorage = open_storage(settings)
        # The console audit chain records each committed head in the media store (audit_anchor.anchor_on_commit).
        self.session_factory.configure(info={STORE_INFO: self.storage})
        self.keyring = Keyring(
            settings.media_key_bytes,
            settings.security.signing_key,
            settings.previous_media_keys_bytes,
            settings.security.signing_keys_previous,
            settings.security.signing_keys_leaked,
        )
        self.rules = CycleRules(
            validity_months=settings.cycle.validity_months,
            due_soon_days=settings.cycle.due_soon_days,
            birthday_month_regions=frozenset(settings.cycle.birthday_month_regions),
            time_zone=settings.time_zone,
        )
        # Called with a session id after the transaction that queued it has committed.
        self.enqueue: Callable[[str], None] = lambda _sid: None
        # What the features plug into the core (decision hooks, notifiers); filled by install_features at start-up.
        self.hooks = FeatureHooks()

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
