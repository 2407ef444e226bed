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


def still_enrolled(ctx: ServiceContext, b: Beneficiary, compared: Template | None) -> bool:
    """Whether `compared`, the template a job loaded when it was claimed, is still `b`'s (True when it compared
    with none). Read under the person's row lock by `processing._apply`: a revocation dropping the template
    (revocation._drop_template) or a withdrawal erasing it while the models ran makes it False."""
    if compared is None:
        return True
    now = load_template(ctx, b)
    return now is not None and now.model == compared.model and np.array_equal(now.embedding, compared.embedding)
