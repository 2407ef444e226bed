"""Every table of the service, from one place.

A table is in ``Base.metadata`` only once its model module has been imported, and the core never imports a
feature, so the composition roots take ``metadata`` from here to create, migrate or compare a schema: the HTTP
app and the CLI (``ServiceContext(settings, schema=metadata)``, which calls ``create_all(engine, metadata)`` of
service/infra/db/engine.py), Alembic (alembic/env.py) and the test fixtures (tests/service/conftest.py).
A feature with tables adds its models module here.
"""

from __future__ import annotations

from types import ModuleType

from sqlalchemy import MetaData

from service.certification import models as certification_models
from service.certification import staff_audit
from service.features.console import models as console_models
from service.features.proxy import models as proxy_models
from service.features.wechat import models as wechat_models
from service.infra.db.engine import Base

MODEL_MODULES: tuple[ModuleType, ...] = (
    certification_models,
    staff_audit,
    proxy_models,
    console_models,
    wechat_models,
)
metadata: MetaData = Base.metadata
