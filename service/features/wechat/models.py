"""WeChat channel tables: who (openid) uses the H5 pages, which sessions they opened, and one row per
notification (the unique key makes every result message and reminder go out at most once)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.certification.models import utcnow
from service.infra.db.engine import Base


class WeChatUser(Base):
    __tablename__ = "wechat_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    # The person this openid last opened a session for. Reminders do not follow it (an opened session proves
    # nothing): they go to the openid of the person's latest accepted self-certification (wechat/notify.py).
    beneficiary_id: Mapped[int | None] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class WeChatSessionLink(Base):
    """A certification session opened from the H5 pages: its result is sent to this openid."""

    __tablename__ = "wechat_sessions"

    session_id: Mapped[str] = mapped_column(ForeignKey("cert_sessions.id"), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class NoticeStatus:
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"  # no longer true when its turn came (e.g. a reminder after an accept): not sent
    CLOSED = "closed"  # a stuck one staff closed (the person told another way: console 微信通知); never sent


class WeChatNotice(Base):
    __tablename__ = "wechat_notices"
    # kind + ref + openid: one result message per session, one reminder per (beneficiary, valid_until). kind +
    # sent_at: the reminders sent today, counted by every run under the daily cap (quota.reminders_allowed).
    __table_args__ = (
        UniqueConstraint("kind", "ref", "openid", name="uq_wechat_notice"),
        Index("ix_wechat_notices_kind_sent_at", "kind", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # result | review | due_soon | overdue | suspended
    ref: Mapped[str] = mapped_column(String(80))
    openid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default=NoticeStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    msgid: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # When a scheduler last claimed it (pending → sending): a `sending` notice claimed more than a quarter of an
    # hour ago (notice_send.STALE_CLAIM), without WeChat's answer, is shown to staff as a send that did not finish
    # (notice_send.answer_unknown). NULL: never claimed, or claimed before migration 0020.
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
