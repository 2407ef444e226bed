"""Exceptions of the WeChat channel."""

from __future__ import annotations


class WeChatError(Exception):
    """WeChat answered with an error code."""

    def __init__(self, errcode: int | None, errmsg: str) -> None:
        super().__init__(f"WeChat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatMediaExpiredError(WeChatError):
    """The media_id is unknown or older than WeChat keeps temporary media (3 days): ask for a new photo."""


class WeChatUnavailableError(WeChatError):
    """WeChat could not be reached or answered garbage: transient, retry later."""
