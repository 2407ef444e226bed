"""A refused counter / home-visit certification form, as its page shows it again (the person's page and a citizen's
request page, one rule for both): the refusal's own sentence (the person recorded deceased meanwhile, a date before
the roster changed the record's ID number: alt_cert.certify_alternative) and what the clerk typed, put back into the
form. A redirect to a generic "check your input" dropped both: the clerk, who had filled everything in, retyped a
note of up to 1000 characters and was refused again for a reason never shown."""

from __future__ import annotations

from dataclasses import dataclass

from service.features.console.alt_cert import AltCertError

BAD_DATE = "日期无效：请填写不晚于今天的日期"
NOTE_MAX = 1000  # the form's maxlength and the certification's note cut (alt_cert)


@dataclass(frozen=True)
class RefusedForm:
    """Why the certification was not recorded, the HTTP status of the page saying so, and the typed fields."""

    message: str
    status: int
    kind: str
    on_date: str
    evidence: str


def refused_form(exc: ValueError | AltCertError, kind: str, on_date: str, evidence: str) -> RefusedForm:
    """The page's answer to a refused form: an `AltCertError`'s message (409: the record's state refuses it), or a
    date that does not parse (422). Missing fields are the routes' own generic text (nothing typed to keep)."""
    message, status = (exc.message, 409) if isinstance(exc, AltCertError) else (BAD_DATE, 422)
    return RefusedForm(message, status, kind, on_date[:10], evidence[:NOTE_MAX])
