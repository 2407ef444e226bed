"""The official account's server URL: signature check (GET verification and every POST) and message handling.

Menu click / subscribe → a link to the certification page; everything else → a short help text. Each answer also
links the request for a home visit (/h5/apply): a person who knows they cannot film (blind, bedridden, unable to
move their head) asks for it without failing first.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from xml.parsers.expat import ExpatError

from wechatpy import create_reply, parse_message

from service.features.wechat.config import WeChatConfig

WELCOME = "欢迎关注!每年一次的待遇资格认证可在手机上完成:拍身份证、录一段短视频,一分钟即可。"
HELP = "请点击菜单“资格认证”开始认证;为家人代认证请选择“为家人认证”。行动不便可申请上门认证。"


# Past this a push is not a WeChat message (they are a few hundred bytes); refused before it is parsed.
MAX_MESSAGE_BYTES = 64 * 1024


class BadMessageError(ValueError):
    """A signed push that is not a WeChat message we parse: not UTF-8 XML, a DTD, or missing fields."""


def verify_signature(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    """WeChat's server-URL signature: sha1 of the sorted token, timestamp and nonce.

    Without a token the signature is sha1 of public values, which anyone can compute: then nothing verifies.
    """
    if not token:
        return False
    expected = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def screen_push(xml: bytes | str) -> str:
    """The text of one push if a parser may see it, or BadMessageError: over the size limit, not UTF-8, or with a
    document type declaration (internal entities: the "billion laughs"; external ones: file and network reads)."""
    if len(xml) > MAX_MESSAGE_BYTES:
        raise BadMessageError(f"message over {MAX_MESSAGE_BYTES} bytes")
    try:
        text = xml.decode("utf-8") if isinstance(xml, bytes) else xml
    except UnicodeDecodeError as exc:
        raise BadMessageError("message is not UTF-8") from exc
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise BadMessageError("document type declarations are refused")
    return text


def parse_push(xml: bytes | str) -> Any:
    """The message of one push (screened first: :func:`screen_push`), or BadMessageError."""
    text = screen_push(xml)
    try:
        msg = parse_message(text)
    except (ExpatError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadMessageError(f"not a WeChat message: {type(exc).__name__}") from exc
    if msg is None:
        raise BadMessageError("empty message")
    return msg


class MessageHandler:
    def __init__(self, config: WeChatConfig) -> None:
        self.config = config

    def certify_link(self) -> str:
        return f'<a href="{self.config.public_base_url.rstrip("/")}/h5/">点击开始资格认证</a>'

    def apply_link(self) -> str:
        """The request form (/h5/apply: it asks for whom, and whether a manual review or a home visit)."""
        return f'行动不便的,可<a href="{self.config.public_base_url.rstrip("/")}/h5/apply">申请上门认证</a>'

    def links(self) -> str:
        return f"{self.certify_link()}\n{self.apply_link()}"

    def reply(self, xml: bytes | str) -> str:
        """The XML answer to one pushed message or event (plain; safe mode seals it); BadMessageError otherwise."""
        msg = parse_push(xml)
        try:
            return self._answer(msg)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # fields of the wrong shape
            raise BadMessageError(f"not a WeChat message: {type(exc).__name__}") from exc

    def _answer(self, msg: Any) -> str:
        if msg.type == "event":
            event = getattr(msg, "event", "")
            if event == "subscribe":
                return str(create_reply(f"{WELCOME}\n{self.links()}", msg).render())
            if event == "click" and getattr(msg, "key", "") == self.config.certify_menu_key:
                return str(create_reply(self.links(), msg).render())
            return "success"  # other events need no answer; WeChat expects "success" or an empty body
        return str(create_reply(f"{HELP}\n{self.links()}", msg).render())
