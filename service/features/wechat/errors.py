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


class WeChatAnswerLostError(WeChatUnavailableError):
    """The request was written but no usable answer came (a read timeout, the connection dropped, an error page):
    WeChat may have done what was asked (a template message delivered). Unlike WeChat out of reach (no connection
    made: nothing can have been done), not to be asked again blindly."""


class WeChatConfigRefusedError(WeChatUnavailableError):
    """WeChat refuses the account's settings (AppID, AppSecret, the IP whitelist): nothing can be done until they
    are fixed. Raised for WeChat's answer and, without asking, while the back-off lasts (config_guard.py). Like WeChat
    out of reach, the schedule's run stops and no notice spends an attempt."""
