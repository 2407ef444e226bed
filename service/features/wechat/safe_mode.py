"""WeChat's safe mode (安全模式) for pushes to the server URL, and the freshness of every signed call.

In plain-text mode the URL signature covers the token, timestamp and nonce, not the message: a captured
signature can carry another body. In safe mode WeChat encrypts the message (AES-256-CBC with the official
account's EncodingAESKey, the app id inside) and signs the ciphertext too (``msg_signature``); our answer is
encrypted and signed the same way. The cipher is wechatpy's implementation of WeChat's protocol.

Either way a call whose timestamp is far from our clock is refused, so that a captured call cannot be replayed
later (WeChat retries a push within about 15 s with the same parameters: those stay inside the window).
"""

from __future__ import annotations

import binascii
import time

from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

from service.features.wechat.config import WeChatConfig
from service.features.wechat.server import BadMessageError, screen_push

# How far a signed call's timestamp may be from our clock (seconds, either way).
MAX_CLOCK_SKEW_S = 300


class SignatureMismatchError(ValueError):
    """The message signature or the app id inside the ciphertext is not ours."""


def is_fresh(timestamp: str, now: float | None = None) -> bool:
    """Whether the signed call's timestamp (Unix seconds, as WeChat sends it) is within the allowed skew."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    return abs((time.time() if now is None else now) - sent) <= MAX_CLOCK_SKEW_S


class SafeMode:
    """Opens WeChat's encrypted pushes and seals our answers (one per channel: the key never changes at run time)."""

    def __init__(self, config: WeChatConfig) -> None:
        self._crypto = WeChatCrypto(config.token, config.encoding_aes_key, config.app_id)

    def open(self, body: bytes, msg_signature: str, timestamp: str, nonce: str) -> str:
        """The plain message inside an encrypted push; SignatureMismatchError when it was not signed with our token
        or not encrypted for our app id, BadMessageError when it is not an encrypted WeChat push at all."""
        envelope = screen_push(body)  # size, UTF-8 and no DTD before any parser sees it
        try:
            return str(self._crypto.decrypt_message(envelope, msg_signature, timestamp, nonce))
        except (InvalidSignatureException, InvalidAppIdException) as exc:
            raise SignatureMismatchError("message signature or app id does not match") from exc
        except (KeyError, TypeError, ValueError, IndexError, binascii.Error) as exc:
            # No <Encrypt>, not base64, a wrong block size or padding, ...
            raise BadMessageError(f"not an encrypted WeChat message: {type(exc).__name__}") from exc

    def seal(self, answer: str, nonce: str, timestamp: str) -> str:
        """Our answer, encrypted and signed for WeChat ("success" and empty answers need no envelope)."""
        if answer in ("", "success"):
            return answer
        return str(self._crypto.encrypt_message(answer, nonce, timestamp))
