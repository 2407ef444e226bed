"""The one settings object of the service (pydantic-settings, env prefix ``PENSION_CERT_``).

Secrets have development defaults so that `pension-cert serve` works out of the box, and ``validate_secrets``
refuses those defaults in any other environment: a production deployment must set its own keys.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.infra.ratelimit import parse_rate

log = logging.getLogger(__name__)

# Development-only keys: public in the source code, hence refused outside development.
DEV_MEDIA_KEY = base64.b64encode(b"pension-cert-dev-media-key-00000").decode()
DEV_SIGNING_KEY = "pension-cert-dev-signing-key"
DEV_API_KEY = "dev-api-key"
DEV_ADMIN_API_KEY = "dev-admin-api-key"  # accepted in development only (service/adapters/http/deps.py)
# Production minimums (validate_secrets): a key shorter than this can be guessed or was typed by hand.
MIN_SECRET_CHARS = 32
# WeChat's admin console takes a server-URL token of 3-32 letters and digits: ask for at least half of that.
MIN_WECHAT_TOKEN_CHARS = 16
# The official account's EncodingAESKey: base64 of a 32-byte AES key without its trailing "=".
WECHAT_AES_KEY_CHARS = 43


# Settings whose value is a secret (keys, tokens, URLs that may carry a password): no error shows their input.
# The groups holding one build pydantic errors without it (``hide_input_in_errors``, checked by
# tests/service/test_key_rotation_review.py), and the CLI's settings lines ask ``shown_input``.
SECRET_SETTINGS = frozenset(
    "PENSION_CERT_" + name
    for name in (
        "MEDIA_KEY",
        "MEDIA_KEYS_PREVIOUS",
        "SIGNING_KEY",
        "SIGNING_KEYS_PREVIOUS",
        "SIGNING_KEYS_LEAKED",
        "API_KEYS",
        "API_KEYS_REPLACED",
        "ADMIN_API_KEYS",
        "DATABASE_URL",
        "BROKER_URL",
        "RATE_LIMIT_REDIS_URL",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "METRICS_TOKEN",
        "WECHAT_APP_SECRET",
        "WECHAT_TOKEN",
        "WECHAT_ENCODING_AES_KEY",
    )
)


def shown_input(variable: str, value: object) -> str:
    """What an error line may add about a setting's value: `` (got '…')`` for an ordinary one, nothing for a
    secret (not even its start: a key cut by one character is nearly the whole key)."""
    # A list's entry is named after it (PENSION_CERT_API_KEYS_0): a secret too.
    secret = any(variable == name or variable.startswith(name + "_") for name in SECRET_SETTINGS)
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else str(value)  # as typed: JSON
    return "" if secret else f" (got {text[:40]!r})"


def _is_base64_of_32_bytes(text: str) -> bool:
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except ValueError:  # binascii.Error
        return False


def _is_ip_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)  # as ClientAddress reads it
    except ValueError:
        return False
    return True


DEFAULT_TIME_ZONE = "Asia/Shanghai"  # the bureau's zone when PENSION_CERT_TIME_ZONE is unset


def known_zone(name: str) -> str:
    """`name` when it is an IANA time zone this host knows, else ValueError: the one check of every zone setting
    (PENSION_CERT_TIME_ZONE, the console's override). Refused at start, not at the first date: an unknown zone
    would fail every request that dates something."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)") from exc
    return name


class InsecureSettingsError(RuntimeError):
    """A development default secret was left in place outside development."""


class SecuritySettings(BaseSettings):
    """Keys and who is trusted: media encryption, signing, API keys, proxies in front of the API."""

    model_config = SettingsConfigDict(
        env_prefix="PENSION_CERT_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    media_key: str = DEV_MEDIA_KEY  # base64 of 32 bytes (AES-256-GCM)
    # Keys the media key replaced (a JSON list, each base64 of 32 bytes): they still open what they sealed (media,
    # encrypted fields, audit anchors) while `pension-cert rekey` re-seals it all with MEDIA_KEY; nothing new is
    # sealed with them. Emptied once `pension-cert rekey --check` finds nothing left (docs/operations.md).
    media_keys_previous: list[str] = Field(default_factory=list)
    signing_key: str = DEV_SIGNING_KEY  # HMAC key: ID-number hashes, certificate codes, session tokens
    # Signing keys SIGNING_KEY replaced (a JSON list): a look-up hash, certificate code, H5 cookie or relative's
    # account id made with one is still recognised while `pension-cert rekey` recomputes the stored hashes;
    # nothing new is made with them (docs/operations.md, "Rotating the signing key").
    signing_keys_previous: list[str] = Field(default_factory=list)
    # Signing keys that LEAKED (a JSON list): used only to find what they hashed (the ID-number look-up hashes,
    # the relatives' account ids) and by `pension-cert rekey` to move it to SIGNING_KEY; never to accept a
    # cookie, form token or certificate code (whoever holds one could sign any). Instead of SIGNING_KEYS_PREVIOUS.
    signing_keys_leaked: list[str] = Field(default_factory=list)
    api_keys: list[str] = Field(default_factory=lambda: [DEV_API_KEY])
    # Operator keys (the bureau's own systems: benefit-system back office, counter terminals, console back-end):
    # every channel route plus the operator actions (cycle run, roster import, staff review, staff-channel
    # sessions). Channel keys (api_keys) get 403 ADMIN_KEY_REQUIRED there. The development default is refused
    # at use outside development.
    admin_api_keys: list[str] = Field(default_factory=lambda: [DEV_ADMIN_API_KEY])
    # Keys replaced by another of the same client (a JSON object, old key → the key that replaced it): a channel key
    # by the same integrator's, an operator key by the same system's. The relatives' accounts one made are that
    # client's under either (`same_client`; the login moves them to the key it came with, audited), and a request
    # retried across the switch is recognised as the first. Not keys accepted: only API_KEYS and ADMIN_API_KEYS
    # authenticate (docs/operations.md, "Replacing a channel key").
    api_keys_replaced: dict[str, str] = Field(default_factory=dict)
    # How long a relative's operator token (POST /api/v1/proxy/operators, the H5 pages' /h5/api/operator) answers
    # after its issue: then 401, and the app logs the relative in again. A token a leaked or withdrawn key minted
    # ends with its key at once (operators.authenticate); this bounds one a key still in force minted.
    operator_token_ttl_s: int = Field(default=24 * 3600, gt=0)
    trusted_proxies: list[str] = Field(default_factory=list)  # IPs/CIDRs whose X-Forwarded-For is believed

    @field_validator("media_keys_previous")
    @classmethod
    def _previous_keys(cls, keys: list[str]) -> list[str]:
        # Refused at start: a key of the wrong shape would open nothing, and the rekey would stop on every object.
        bad = [str(i + 1) for i, key in enumerate(keys) if not _is_base64_of_32_bytes(key)]
        if bad:
            raise ValueError(f"entry {', '.join(bad)} is not base64 of exactly 32 bytes")
        return keys

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, entries: list[str]) -> list[str]:
        # Refused at start (Part AI): the rate limits' parser (service/infra/ratelimit.py, ClientAddress) would
        # raise on the first request, and uvicorn's would ignore the entry.
        bad = [str(i + 1) for i, entry in enumerate(entries) if not _is_ip_network(entry)]
        if bad:
            raise ValueError(f"entry {', '.join(bad)} is not an IP address or network (10.0.0.5, 10.0.0.0/8, fd00::/8)")
        return entries

    @field_validator("signing_keys_previous", "signing_keys_leaked")
    @classmethod
    def _previous_signing_keys(cls, keys: list[str]) -> list[str]:
        # An empty entry is a templating slip (`["$OLD"]` with OLD unset): it would recognise nothing of ours.
        bad = [str(i + 1) for i, key in enumerate(keys) if not key.strip()]
        if bad:
            raise ValueError(f"entry {', '.join(bad)} is empty")
        return keys

    @field_validator("api_keys_replaced")
    @classmethod
    def _replaced_api_keys(cls, pairs: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # Each a step of the procedure missed (docs/operations.md), refused at start: the entry is named by its
        # place, never by its keys. A family with no key in force would move its accounts to no one. A family is
        # of one kind: an operator key's accounts are named `admin:`, a channel key's `api:`, and a channel key
        # must never get what the bureau's own systems made (nor the other way round).
        channel, admin = info.data.get("api_keys", ()), info.data.get("admin_api_keys", ())
        for i, (old, new) in enumerate(pairs.items()):
            if not old.strip() or not new.strip() or old == new:
                raise ValueError(f"entry {i + 1} has an empty key, or a key replaced by itself")
            family = (new, *_client_keys(pairs, new))
            operator, channels = any(k in admin for k in family), any(k in channel for k in family)
            if operator and channels:
                raise ValueError(
                    f"entry {i + 1} names an operator key (ADMIN_API_KEYS) and a channel key (API_KEYS): a key is "
                    "replaced by one of its own kind"
                )
            if not operator and not channels:
                raise ValueError(
                    f"entry {i + 1}: the key that replaced it is not in PENSION_CERT_API_KEYS (nor in "
                    "PENSION_CERT_ADMIN_API_KEYS, nor replaced by one that is): add the client's new key there"
                )
        return pairs

    def same_client(self, key: str) -> tuple[str, ...]:
        """The other keys that API_KEYS_REPLACED makes one client with `key` (channel keys, or operator keys: a
        family is of one kind): the keys it replaced and the keys that replaced it, however many replacements apart
        (empty for a key never replaced)."""
        return _client_keys(self.api_keys_replaced, key)

    @field_validator("signing_keys_leaked")
    @classmethod
    def _leaked_signing_keys(cls, keys: list[str], info: ValidationInfo) -> list[str]:
        # A leaked key still current would sign every new cookie and code; one also listed as previous would
        # still verify them. Either is a step of the procedure missed (docs/operations.md): refused at start.
        for i, key in enumerate(keys):
            if key == info.data.get("signing_key"):
                raise ValueError(
                    f"entry {i + 1} is PENSION_CERT_SIGNING_KEY itself: set a new SIGNING_KEY, the leaked one here"
                )
            if key in info.data.get("signing_keys_previous", ()):
                raise ValueError(
                    f"entry {i + 1} is also in PENSION_CERT_SIGNING_KEYS_PREVIOUS, where it would still verify "
                    "cookies and certificate codes: remove it from there"
                )
        return keys


def _client_keys(replaced: Mapping[str, str], key: str) -> tuple[str, ...]:
    """The keys linked to `key` by the (old → new) pairs, either way round, transitively; `key` left out."""
    found, todo = {key}, [key]
    while todo:
        k = todo.pop()
        for old, new in replaced.items():
            linked = new if old == k else old if new == k else None
            if linked is not None and linked not in found:
                found.add(linked)
                todo.append(linked)
    return tuple(sorted(found - {key}))


class StorageSettings(BaseSettings):
    """Where media live (local folder or S3-compatible bucket) and how long."""

    model_config = SettingsConfigDict(
        env_prefix="PENSION_CERT_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    media_dir: Path | None = None  # default var_dir/media
    # Object storage (service/infra/storage_s3.py): s3://bucket/prefix puts media in an S3-compatible bucket instead of
    # media_dir, so API and workers can run on hosts without a shared disk. Endpoint empty: the AWS default.
    media_url: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_addressing_style: Literal["path", "virtual"] = "path"
    # Media no session row points to (a crash between the write and the commit) are deleted by the daily run once
    # older than this: longer than any upload takes from write to commit.
    orphan_grace_s: int = 3600
    retention_days: int = 30
    # A supervisor's hold on a session's media (suspected or revoked 冒领: service/certification/evidence_hold.py)
    # keeps them from the purge this long after it was placed; a supervisor places a new one to keep them longer.
    # Bounded: biometric data are never kept without an end (PIPL).
    evidence_hold_days: int = Field(default=180, ge=1, le=1095)
    # The video an open request for a manual review (人工审核) waits on is kept from the purge at most this long
    # after the request was filed (service/features/console/assist_hold.py): staff who never act on a request must
    # not keep a citizen's face video without an end. Then the purge takes it and the request waits for a home visit
    # or the counter.
    review_video_hold_days: int = Field(default=30, ge=1, le=365)
    # Supervisors are warned this many days before that hold ends on a request still open (a console alert,
    # service/features/console/assist_hold_end.py): the video is still there to watch.
    review_video_warn_days: int = Field(default=3, ge=1, le=30)


class UploadSettings(BaseSettings):
    """Upload limits."""

    model_config = SettingsConfigDict(env_prefix="PENSION_CERT_", env_file=None, extra="ignore")

    # Upload limits.
    max_image_bytes: int = 10 * 1024 * 1024
    max_video_bytes: int = 50 * 1024 * 1024
    image_types: list[str] = Field(default_factory=lambda: ["image/jpeg", "image/png", "image/webp"])
    video_types: list[str] = Field(default_factory=lambda: ["video/mp4", "video/webm", "video/quicktime"])


class WorkerSettings(BaseSettings):
    """Workers: how certification jobs run, are leased, retried and supervised."""

    model_config = SettingsConfigDict(
        env_prefix="PENSION_CERT_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    # Worker: "process" (embedded default) starts `pension-cert worker` processes beside the API, polling the
    # same database; "thread" runs one in the API process; "celery" enqueues to broker_url; "none": external.
    worker_mode: Literal["process", "thread", "celery", "none"] = "process"
    worker_threads: int = 1
    worker_processes: int = 2  # one per core on the 2-core target: the models run outside the API's GIL
    broker_url: str = "redis://127.0.0.1:6379/0"
    job_lease_s: int = 300  # a job claimed longer ago than this is considered abandoned and redone
    job_max_attempts: int = 3
    # A job put back after a transient failure (object store or database unreachable) waits this long before a
    # worker may claim it again: an outage is retried every few seconds, not in a tight loop.
    job_retry_backoff_s: float = 5.0
    sweep_interval_s: int = 60  # Celery beat: re-enqueue jobs whose message was lost or whose lease expired
    poll_interval_s: float = 0.5
    # Worker liveness (service/certification/heartbeat.py, service/adapters/workers/supervisor.py): every worker
    # process writes a heartbeat row
    # this often; one silent for worker_stale_s is dead: /readyz fails ("workers") when no worker is fresh, and
    # the jobs it held are claimable at once instead of after job_lease_s (still the hard upper bound).
    worker_heartbeat_s: float = 5.0
    worker_stale_s: float = 30.0
    # Embedded workers (process / thread) that die are replaced after a back-off: restart_backoff_s, doubled
    # for each death in a row of a worker that lived less than worker_stable_s, at most restart_backoff_max_s.
    worker_restart_backoff_s: float = 1.0
    worker_restart_backoff_max_s: float = 60.0
    worker_stable_s: float = 60.0
    # Celery certification tasks' time limits (service/adapters/workers/tasks.py; the prefork pool enforces them,
    # --pool=solo does not). Past the soft limit the task is interrupted and its job put back as a failed attempt
    # (FAILED for staff after job_max_attempts); past the hard limit (a decoder hung in C code, deaf to the soft
    # one) its pool process is killed and replaced, and the job handed back the same way. The first job of a pool
    # process also loads the models. Keep the hard limit below job_lease_s (the worker warns at start otherwise: a
    # task still running when its lease ends is announced again by the sweep). Equal limits: no soft phase.
    # The embedded workers (process / thread) stop a job at the soft limit too, at the pipeline's next safe point
    # (cooperative: service/adapters/workers/job_limit.py), and give it up the same way; they warn at start unless
    # it is below job_lease_s.
    task_soft_time_limit_s: float = 240.0
    task_time_limit_s: float = 270.0

    # Field validators on the second of each pair (declared after the first: info.data holds it), so that the start
    # check's line names a variable (a model validator's error has none: "PENSION_CERT_: …"; Part AX).
    @field_validator("worker_stale_s")
    @classmethod
    def _heartbeat_below_staleness(cls, stale: float, info: ValidationInfo) -> float:
        # Two missed beats (a slow database write, a GIL-heavy moment) must not make a live worker look dead.
        beat = info.data.get("worker_heartbeat_s")
        if beat is not None and not 0 < beat * 2 <= stale:
            raise ValueError(
                f"must be at least twice PENSION_CERT_WORKER_HEARTBEAT_S ({beat:g} s), which must be positive"
            )
        return stale

    @field_validator("task_time_limit_s")
    @classmethod
    def _soft_limit_first(cls, hard: float, info: ValidationInfo) -> float:
        soft = info.data.get("task_soft_time_limit_s")
        if soft is not None and not 0 < soft <= hard:
            raise ValueError(
                f"must be at least PENSION_CERT_TASK_SOFT_TIME_LIMIT_S ({soft:g} s), which must be positive"
            )
        return hard


class CycleSettings(BaseSettings):
    """The annual certification cycle."""

    model_config = SettingsConfigDict(env_prefix="PENSION_CERT_", env_file=None, extra="ignore")

    # Annual cycle.
    validity_months: int = 12
    due_soon_days: int = 30
    birthday_month_regions: list[str] = Field(default_factory=list)  # region codes using the birthday-month rule
    # A person imported from the roster without a validity or last-certification date is valid until the
    # roster's cycle start (the row's cycle_start, else the import date) plus this many days: never overdue,
    # never suspended, on the day they are imported (issue 21).
    new_import_grace_days: int = Field(default=90, ge=0, le=730)
    # A cycle run that would suspend more than this share of the active beneficiaries (and more than
    # cycle_guard_min_suspensions of them) changes nothing and raises an alert, unless an operator forces it.
    cycle_max_suspend_share: float = 0.2
    cycle_guard_min_suspensions: int = 10
    # The daily run's hour, the bureau's time (time_zone): Celery beat (`pension_cert.daily_run`) and the embedded
    # service's daily thread run it then (service/certification/daily_run.py). 01:00: the new day has begun, the
    # storage upkeep (03:00) comes after, and the office opens on the day's suspension list. -1: off, where the
    # benefit system calls POST /api/v1/cycle/run itself (after its own roster import, say).
    cycle_run_hour: int = Field(default=1, ge=-1, le=23)


class CertificationSettings(BaseSettings):
    """One certification: attempts a day, challenge, session lifetime, models, kinship margin."""

    model_config = SettingsConfigDict(env_prefix="PENSION_CERT_", env_file=None, extra="ignore")

    # Rejected certifications a day per requester (WeChat account, family operator, API key) for one person,
    # and for that person from everyone together (higher: a stranger cannot spend the citizen's attempts;
    # service/certification/attempts.py).
    failures_per_day: int = 3
    failures_per_day_beneficiary: int = 10
    # Sessions one requester (API key, WeChat account, operator) may have awaiting their decision; the next upload
    # that would queue one is 429 QUEUE_FULL (sessions._check_queue_share). About two minutes of two workers'
    # work: an integrator sending one video per certifying pensioner stays far below it. 0: no cap.
    queued_per_requester: int = Field(default=300, ge=0)
    challenge_ttl_s: int = Field(default=300, gt=0)
    # A fixed action challenge (e.g. a staff counter's routine, or tests); empty: random 2-3 actions.
    challenge_actions: list[str] = Field(default_factory=list)
    # The screen-light challenge (pipelines/liveness/light.py; docs/wechat.md, "The screen-light challenge"): each
    # session is issued a random sequence of screen colours the capture page shows while it records, and the
    # pipeline measures whether the face follows it (a video replayed on a monitor cannot). "observe": issued,
    # shown, measured and recorded, the verdict unchanged (a pilot gathers real figures first); "enforce": a pass
    # needs the response (the certifier's light_mode); "off": no sequence issued.
    light_challenge: Literal["off", "observe", "enforce"] = "observe"
    # At least twice challenge_ttl_s: a video begun before the challenge ended is taken up to challenge_ttl_s past
    # its end (docs/security.md Part AU); a session ending sooner refused it as expired (Part AX).
    session_ttl_s: int = 3600
    # Kinship rule (proxy_auth.RelativePolicy): a relative's enrolled face scoring at or above the claimed
    # person's similarity minus this margin sends the session to review. None: the policy's measured default.
    face_relative_margin: float | None = None
    model_pack: str | None = None
    # The face-match calibration file (empty: the shipped one). A deployment points it at its own copy extended
    # with its enrolled pensioners (`pension-cert calibrate-faces --from-enrolled`). The workers' certifier is
    # built with it (service.adapters.workers.worker.shared_certifier); the offline CLI commands read the same
    # variable (pipelines.face_match.calibration).
    face_calibration: str = ""

    @field_validator("challenge_actions")
    @classmethod
    def _challenge_fits_the_clip(cls, actions: list[str]) -> list[str]:
        # Refused at start: an unknown name failed only when a session was opened, and more actions than the
        # capture page's fixed windows fit in the server's clip made every take too long (VIDEO_TOO_LONG).
        if not actions:
            return actions
        from pipelines.liveness.challenge import FIXED_ACTION_S, max_fixed_actions, parse_actions  # lazy: as below
        from pipelines.liveness.video import VideoLimits  # lazy: the decoder's modules, only when a challenge is set

        parsed = parse_actions(actions)
        clip_s = VideoLimits().max_duration_s
        most = max_fixed_actions(clip_s)
        if len(parsed) > most:
            raise ValueError(
                f"{len(parsed)} actions do not fit the {clip_s:g} s clip the server accepts: the capture page gives "
                f"each {FIXED_ACTION_S:g} s, so at most {most} (leave it empty for the random 2-3 actions)"
            )
        return list(parsed)

    @field_validator("session_ttl_s")
    @classmethod
    def _session_outlives_the_challenge(cls, ttl: int, info: ValidationInfo) -> int:
        # Refused at start (Part AX): the session's end would cut the challenge's upload grace short, and under
        # the challenge's own lifetime refuse a citizen within the time the page gave.
        challenge = info.data.get("challenge_ttl_s")
        if challenge is not None and ttl < 2 * challenge:
            raise ValueError(
                f"must be at least twice PENSION_CERT_CHALLENGE_TTL_S ({challenge} s): set it to {2 * challenge} "
                "or more, or an upload begun in time is refused as the session ends"
            )
        return ttl


class WeChatTemplate(BaseModel):
    """A template obtained today (类目模板) with its key mapping: template key (`thing1`, `time2`, …) → the message's
    field (`name`, `due_date`, `next_step`, …). Checked when the channel is built (wechat/template_fit.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    keys: dict[str, str] = Field(min_length=1)


class WeChatSettings(BaseSettings):
    """WeChat official-account channel (docs/wechat.md); an empty app id switches it off."""

    model_config = SettingsConfigDict(
        env_prefix="PENSION_CERT_WECHAT_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    app_id: str = ""
    app_secret: str = ""
    token: str = ""  # the server-URL token set in the official account's admin console
    # The EncodingAESKey of the server configuration in 安全模式 (safe mode); empty: plain-text mode, which a
    # production start refuses (its signature does not cover the message body).
    encoding_aes_key: str = ""
    api_base_url: str = "https://api.weixin.qq.com/"
    oauth_base_url: str = "https://open.weixin.qq.com/connect/"
    # Notice kind → template: an id alone (a historic template, the classic keyword1-3 form) or {"id", "keys"}
    # (docs/wechat.md, "Template messages").
    templates: dict[str, str | WeChatTemplate] = Field(default_factory=dict)
    schedule_s: float = 60.0  # token refresh + notifications (embedded schedule and Celery beat)
    notify_max_attempts: int = 5
    # Reminders (due soon, overdue, suspended) sent a day at most, spread evenly over the reminder hours; those not
    # reached go out the next days, the most urgent first: suspended, overdue, due soon, each the earliest date first
    # (wechat/quota.py, `urgency`). 0: no cap. A campaign's reminders all at 08:00 brought every pensioner to
    # certify in one morning (docs/security.md part AU).
    reminders_per_day: int = Field(default=20000, ge=0)

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key(cls, key: str) -> str:
        # Refused at start: a key of the wrong shape would fail every push instead.
        if key and (len(key) != WECHAT_AES_KEY_CHARS or not _is_base64_of_32_bytes(key + "=")):
            raise ValueError(f"the EncodingAESKey is {WECHAT_AES_KEY_CHARS} letters and digits (base64 of 32 bytes)")
        return key


class H5Settings(BaseSettings):
    """The H5 pages of the WeChat channel."""

    model_config = SettingsConfigDict(env_prefix="PENSION_CERT_H5_", env_file=None, extra="ignore")

    card_check: bool = True  # instant OCR feedback on the H5 card step (loads the ID-card reader in the API)
    # Card reads running at once in one API process; one more waits up to 3 s for a slot, then is answered 503 BUSY
    # (cardcheck.py).
    card_reads: int = Field(default=2, ge=1)
    # The bureau's own recordings of the H5 spoken prompts ({key}.mp3 or .wav, keys in
    # service/features/wechat/h5/voice.py);
    # a key without one is spoken by the file generated with espeak-ng (docs/wechat.md).
    audio_dir: Path | None = None
    # Development only (PENSION_CERT_ENV=development): /h5/dev-login opens the H5 pages without WeChat for a
    # made-up openid (service/features/wechat/h5/devlogin.py); refused in test and production.
    dev_login: bool = False


class ObservabilitySettings(BaseSettings):
    """Operations (docs/operations.md): logs and metrics."""

    model_config = SettingsConfigDict(
        env_prefix="PENSION_CERT_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    # Operations (docs/operations.md): logs, metrics, rate limits.
    log_format: Literal["text", "json"] = "text"  # json: one object per line with request_id / session_id
    metrics_enabled: bool = True  # GET /metrics (Prometheus text format)
    metrics_token: str = ""  # if set, /metrics requires "Authorization: Bearer <token>"
    metrics_port: int = 0  # `pension-cert worker` / celery worker: serve their own /metrics on this port (0: off)


def _a_rate(rule: str) -> str:
    # Read as the limits read it, when the settings are: one settings line at start (Part AS), not a 500 on every
    # request once the middleware is built.
    parse_rate(rule)
    return rule


# A rule of RateLimitSettings ("N/minute"; service/adapters/http/limits.py reads each with `parse_rate`): the type
# marks it, and RATE_RULES (below the class) is read from the fields so marked.
_RATE_RULE = AfterValidator(_a_rate)
RateRule = Annotated[str, _RATE_RULE]


class RateLimitSettings(BaseSettings):
    """Rate limits (service/adapters/http/limits.py)."""

    model_config = SettingsConfigDict(
        env_prefix="PENSION_CERT_RATE_LIMIT_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    enabled: bool = True
    backend: Literal["auto", "memory", "redis"] = "auto"  # auto: redis in celery mode, else memory
    redis_url: str = ""  # empty: broker_url
    # Past this (seconds) a Redis call gives up and the request goes through uncounted (fail open).
    redis_timeout_s: float = 0.25
    # "N/second|minute|hour|day"; empty switches one rule off. Clients with a valid API key are counted per key.
    ip: RateRule = "600/minute"  # every request of one client IP, or of one WeChat account logged in to the H5 pages
    # Every request with a WeChat login from one IP, all accounts together (a community centre or a carrier's NAT
    # puts many pensioners behind one address in the campaign's peak: each is counted per account above).
    ip_accounts: RateRule = "6000/minute"
    api_key: RateRule = "20000/minute"  # every request of one API key (channel back-ends, the bench)
    session_ip: RateRule = "30/minute"  # session creation per IP or WeChat account (without an API key)
    upload_ip: RateRule = "60/minute"  # uploads per IP or WeChat account (without an API key)
    # Session creation and uploads with a WeChat login from one IP, all accounts together: one address holding
    # many accounts must not multiply its tries of names and numbers (or its OCR work) by the accounts it holds.
    session_ip_accounts: RateRule = "300/minute"
    upload_ip_accounts: RateRule = "600/minute"
    beneficiary: RateRule = "30/hour"  # session creation per beneficiary and requester (key, openid or IP)
    beneficiary_all: RateRule = "120/hour"  # session creation per beneficiary, every requester together
    auth_failures: RateRule = "20/minute"  # refused API keys per IP, then every key attempt is refused


# Every rule's name, in the order of the fields (the limits read each; the validator is on each one's type).
RATE_RULES: tuple[str, ...] = tuple(
    name for name, field in RateLimitSettings.model_fields.items() if _RATE_RULE in field.metadata
)


class TimeZoneSettings(BaseSettings):
    """The bureau's time zone alone, read from the environment exactly as ``Settings.time_zone`` is (the same variable
    in any case, the same default, the same check): for a command that needs no other setting (`pension-cert
    certify`), which must not date things in another zone than the service."""

    model_config = SettingsConfigDict(env_prefix="PENSION_CERT_", env_file=None, extra="ignore")

    time_zone: str = DEFAULT_TIME_ZONE

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        return known_zone(name)


class Settings(BaseSettings):
    """The whole configuration: a few top-level values and one group per concern (``settings.workers.job_lease_s``,
    ``settings.wechat.app_id``). Each group reads its own variables with its prefix (``GROUP_PREFIXES``), so the
    environment names are flat: ``PENSION_CERT_JOB_LEASE_S``, ``PENSION_CERT_WECHAT_APP_ID``."""

    model_config = SettingsConfigDict(
        env_prefix="PENSION_CERT_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    env: Literal["development", "test", "production"] = "development"
    var_dir: Path = Path("var")
    database_url: str = ""  # empty → SQLite file under var_dir
    public_base_url: str = "http://127.0.0.1:8000"
    # The onnxruntime-web files for the H5 live guidance, extracted by scripts/web_bundle.sh (same variable there).
    web_dir: Path = Path.home() / ".cache" / "pension-cert" / "web"
    # The bureau's phone line shown on the H5 pages (daily limit, timeout, failed result): for a manual review
    # or a home visit. Empty: the pages point to the counter only.
    bureau_phone: str = ""
    # The bureau's time zone (IANA name): every calendar date (cycle day, certification date, reminders, message
    # dates) is the date there (service/infra/clock.py); the console shows times in it too.
    time_zone: str = DEFAULT_TIME_ZONE
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    uploads: UploadSettings = Field(default_factory=UploadSettings)
    workers: WorkerSettings = Field(default_factory=WorkerSettings)
    cycle: CycleSettings = Field(default_factory=CycleSettings)
    certification: CertificationSettings = Field(default_factory=CertificationSettings)
    wechat: WeChatSettings = Field(default_factory=WeChatSettings)
    h5: H5Settings = Field(default_factory=H5Settings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        # Refused at start (Part AI): the WeChat OAuth callback and the links in messages are built from it.
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not a URL; expected https://host (the address citizens' phones open), no path needed")
        return url

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        return known_zone(name)

    @property
    def sqlite_path(self) -> Path:
        return self.var_dir / "pension_cert.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def effective_media_dir(self) -> Path:
        return self.storage.media_dir or self.var_dir / "media"

    def cookies_secure(self, scheme: str) -> bool:
        """Whether a cookie must be `Secure` (TLS only): the request came over https, or this is production (behind
        a proxy that ends TLS, where the app itself sees http). The one rule for the console's and the H5 pages'."""
        return scheme == "https" or self.env == "production"

    @property
    def media_key_bytes(self) -> bytes:
        key = base64.b64decode(self.security.media_key)
        if len(key) != 32:
            raise InsecureSettingsError("PENSION_CERT_MEDIA_KEY must be base64 of exactly 32 bytes")
        return key

    @property
    def previous_media_keys_bytes(self) -> tuple[bytes, ...]:
        """The keys MEDIA_KEY replaced (checked by the field's validator), for opening only."""
        return tuple(base64.b64decode(key) for key in self.security.media_keys_previous)

    def validate_secrets(self) -> None:
        """Refuse the public development secrets outside development."""
        self.media_key_bytes  # noqa: B018 - decodes and checks the length
        if self.certification.challenge_actions and self.env != "production":
            log.warning(
                "fixed action challenge %s: every session asks the same actions", self.certification.challenge_actions
            )
        if self.env == "development":
            return
        bad = self.dev_default_secrets()
        if bad:
            raise InsecureSettingsError(f"development default secrets refused in {self.env}: {', '.join(bad)}")
        if self.env == "production":
            weak = self.production_weaknesses()
            if weak:
                raise InsecureSettingsError(f"insecure settings refused in production: {'; '.join(weak)}")

    def dev_default_secrets(self) -> list[str]:
        """The variables still holding a public development default (refused outside development; also listed
        one per line by the CLI's start-up check, service.adapters.cli.common.settings_problems)."""
        bad = [
            name
            for name, value, default in (
                ("PENSION_CERT_MEDIA_KEY", self.security.media_key, DEV_MEDIA_KEY),
                ("PENSION_CERT_SIGNING_KEY", self.security.signing_key, DEV_SIGNING_KEY),
            )
            if value == default
        ]
        if DEV_API_KEY in self.security.api_keys:
            bad.append("PENSION_CERT_API_KEYS")
        # A deployment outside development never sealed anything with the public key: opening with it would only
        # let whoever can write the bucket or the database plant media and fields that the service takes as its own.
        if DEV_MEDIA_KEY in self.security.media_keys_previous:
            bad.append("PENSION_CERT_MEDIA_KEYS_PREVIOUS")
        # Likewise: with the public signing key recognised, anyone could mint H5 cookies and certificate codes
        # (as a leaked key, SIGNING_KEYS_LEAKED, it verifies nothing: accepted).
        if DEV_SIGNING_KEY in self.security.signing_keys_previous:
            bad.append("PENSION_CERT_SIGNING_KEYS_PREVIOUS")
        return bad

    def non_commercial_pack(self) -> str | None:
        """The configured model pack's name when the manifest marks it non-commercial (an unknown pack is the
        model check's to report)."""
        from models.manifest import load_manifest  # lazy: only a production start asks; importing settings stays light
        from models.packs import pack_name_from_env  # lazy: as above

        name = self.certification.model_pack or pack_name_from_env()
        packs = load_manifest().packs
        return name if name in packs and not packs[name].commercial_use else None

    def _open_metrics(self) -> str | None:
        """The API's /metrics and a worker's own metrics port (on every interface) without a token of
        MIN_SECRET_CHARS: both ask the same one (`observability.metrics.may_read`)."""
        o = self.observability
        served = [
            (what, off)
            for what, off, on in (
                ("/metrics", "PENSION_CERT_METRICS_ENABLED=false", o.metrics_enabled),
                (
                    "a worker's metrics port (PENSION_CERT_METRICS_PORT)",
                    "PENSION_CERT_METRICS_PORT=0",
                    o.metrics_port > 0,
                ),
            )
            if on
        ]
        if not served or len(o.metrics_token) >= MIN_SECRET_CHARS:
            return None
        return (
            f"PENSION_CERT_METRICS_TOKEN {'empty' if not o.metrics_token else 'too short'}: "
            f"{' and '.join(w for w, _ in served)} need a bearer token of {MIN_SECRET_CHARS}+ characters (set one, "
            f"or {' and '.join(off for _, off in served)})"
        )

    def _public_address_problem(self) -> str | None:
        """Why PUBLIC_BASE_URL cannot be the address printed on certificates (their QR code and 核验网址: a paper
        printed once points there for its whole year) and opened by citizens' phones; None when it can."""
        if "public_base_url" not in self.model_fields_set:
            why = "is not set (the default is this machine's own address)"
        else:
            parts = urlsplit(self.public_base_url)
            host = (parts.hostname or "").rstrip(".")
            try:
                literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
            except ValueError:
                literal = None
            if parts.scheme != "https":
                why = "is not https:// (anyone on the way could answer a certificate's check as valid)"
            elif host == "localhost" or host.endswith(".localhost") or literal is not None:
                why = "names this machine or an IP address, not the bureau's domain name"
            else:
                return None
        return (
            f"PENSION_CERT_PUBLIC_BASE_URL {why}: certificates' QR codes and printed 核验网址 point there; set the "
            "public https address citizens' phones open, e.g. https://h5.pension.example.gov.cn"
        )

    def production_weaknesses(self) -> list[str]:
        """What a production start refuses besides the development defaults: short keys, an open /metrics,
        a public address certificates cannot point to, a WeChat channel whose callback signature anyone could
        compute."""
        weak: list[str] = []
        if len(self.security.signing_key) < MIN_SECRET_CHARS:
            weak.append(f"PENSION_CERT_SIGNING_KEY shorter than {MIN_SECRET_CHARS} characters")
        # A previous key still verifies cookies and certificate codes: as easy to guess as a short current one (a
        # leaked one verifies nothing: any length).
        if any(len(k) < MIN_SECRET_CHARS for k in self.security.signing_keys_previous):
            weak.append(f"PENSION_CERT_SIGNING_KEYS_PREVIOUS has a key shorter than {MIN_SECRET_CHARS} characters")
        if any(len(k) < MIN_SECRET_CHARS for k in self.security.api_keys):
            weak.append(f"PENSION_CERT_API_KEYS has a key shorter than {MIN_SECRET_CHARS} characters")
        if any(len(k) < MIN_SECRET_CHARS for k in self.security.admin_api_keys):
            weak.append(f"PENSION_CERT_ADMIN_API_KEYS has a key shorter than {MIN_SECRET_CHARS} characters")
        metrics = self._open_metrics()
        if metrics:
            weak.append(metrics)
        address = self._public_address_problem()
        if address:
            weak.append(address)
        if self.wechat.app_id:
            if not self.wechat.encoding_aes_key:
                weak.append(
                    "PENSION_CERT_WECHAT_ENCODING_AES_KEY is empty: in plain-text mode WeChat's signature does not "
                    "cover the message body (set the server configuration to 安全模式 and give its EncodingAESKey)"
                )
            if len(self.wechat.token) < MIN_WECHAT_TOKEN_CHARS:
                weak.append(f"PENSION_CERT_WECHAT_TOKEN shorter than {MIN_WECHAT_TOKEN_CHARS} characters")
            if not self.wechat.app_secret:
                weak.append("PENSION_CERT_WECHAT_APP_SECRET is empty")
        if self.h5.dev_login:
            weak.append("PENSION_CERT_H5_DEV_LOGIN is set: /h5/dev-login would let anyone in as any WeChat user")
        pack = self.non_commercial_pack()
        if pack:
            weak.append(
                f"PENSION_CERT_MODEL_PACK is {pack!r}: its models are licensed for non-commercial research or "
                "evaluation only (use the default pack)"
            )
        if self.certification.challenge_actions:
            # A known challenge lets an attacker prepare a video that performs it (issue 22).
            weak.append(
                "PENSION_CERT_CHALLENGE_ACTIONS is set: a fixed action challenge can be prepared in advance "
                "(unset it; the default draws 2-3 actions in random order per session)"
            )
        return weak


@lru_cache(maxsize=1)
def setting_groups() -> Mapping[str, type[BaseSettings]]:
    """The groups of ``Settings`` by attribute name (``"wechat"`` → ``WeChatSettings``)."""
    groups: dict[str, type[BaseSettings]] = {}
    for name, field in Settings.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseSettings):
            groups[name] = kind
    return MappingProxyType(groups)


def variable_name(owner: type[BaseSettings], field: str) -> str:
    """The environment variable of one field: its class's prefix + the field in capitals
    (``variable_name(WeChatSettings, "app_id")`` → ``PENSION_CERT_WECHAT_APP_ID``)."""
    return str(owner.model_config.get("env_prefix", "")) + field.upper()


@lru_cache(maxsize=1)
def settings_variables() -> Mapping[str, tuple[type[BaseSettings], str]]:
    """Every environment variable the settings read → (the class holding it, its field name)."""
    groups = setting_groups()
    out: dict[str, tuple[type[BaseSettings], str]] = {}
    owners: list[type[BaseSettings]] = [Settings, *groups.values()]
    for owner in owners:
        for name in owner.model_fields:
            if owner is not Settings or name not in groups:
                out[variable_name(owner, name)] = (owner, name)
    return MappingProxyType(out)


def _group_names() -> dict[type[BaseSettings], str]:
    return {kind: name for name, kind in setting_groups().items()}


def settings_from_flat(**values: Any) -> Settings:
    """``Settings`` from the documented flat names (each environment variable without ``PENSION_CERT_``, e.g.
    ``job_lease_s=60, wechat_app_id="wx…"``): for tests, benches and tools that configure a few values by the
    names the operator knows. Values not given are read from the environment as usual. An unknown name raises
    ``TypeError``."""
    variables = settings_variables()
    top: dict[str, Any] = {}
    grouped: dict[str, dict[str, Any]] = {}
    group_of = _group_names()
    for key, value in values.items():
        found = variables.get(variable_name(Settings, key))
        if found is None:
            raise TypeError(f"unknown setting {key!r}")
        owner, field = found
        if owner is Settings:
            top[field] = value
        else:
            grouped.setdefault(group_of[owner], {})[field] = value
    for name, fields in grouped.items():
        top[name] = setting_groups()[name](**fields)
    return Settings(**top)


def as_environment(settings: Settings) -> dict[str, str]:
    """The settings as environment variables (lists and dicts as JSON): what a child process (a worker, a test's
    server) needs to build the same ``Settings``. None values are left out (their default is None)."""
    group_of = _group_names()
    env: dict[str, str] = {}
    for variable, (owner, name) in settings_variables().items():
        holder = settings if owner is Settings else getattr(settings, group_of[owner])
        value = getattr(holder, name)
        if value is not None:
            env[variable] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    settings = Settings()
    settings.validate_secrets()
    return settings


def prefixed_environment(prefix: str) -> dict[str, str]:
    """The variables ``<prefix><NAME>`` of the environment as ``{"name": value}``: the deployment's overrides of a
    policy that has its own defaults (``PENSION_CERT_PROXY_<FIELD>``, service/features/proxy/policy.py)."""
    out: dict[str, str] = {}
    for variable, value in os.environ.items():
        name = variable[len(prefix) :]
        if variable.startswith(prefix) and name == name.upper():
            out[name.lower()] = value
    return out


def early_log_format() -> str:
    """``PENSION_CERT_LOG_FORMAT`` read before the settings are loaded: the CLI and the Celery worker set up
    logging first, so that a settings problem is itself logged in the chosen format (``Settings.log_format`` is
    the same variable once loaded)."""
    return os.environ.get("PENSION_CERT_LOG_FORMAT", "text")
