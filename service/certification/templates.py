"""A beneficiary's enrolled face template, decrypted: used by the worker (the claimed person's template) and by
the kinship rule (their relatives' templates)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from service.certification.context import ServiceContext
from service.certification.models import Beneficiary

if TYPE_CHECKING:
    from pipelines.decision.runner import Template


def load_template(ctx: ServiceContext, b: Beneficiary) -> Template | None:
    if b.template is None or b.template_model is None:
        return None
    # Lazy on purpose: the decision runner pulls in every pipeline (≈1.5 s of imports) and the API process,
    # which imports this module, never runs it.
    from pipelines.decision.runner import Template  # lazy: see above

    raw = ctx.keyring.decrypt_field(b.template.decode(), "beneficiary.template")
    return Template(np.frombuffer(bytes.fromhex(raw), dtype=np.float32).copy(), b.template_model)
