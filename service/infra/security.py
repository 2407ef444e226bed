"""Keys in use: ID numbers encrypted (AES-GCM) and searchable by keyed hash; tokens; how an ID number is shown
(masked). The logging side of masking (the filter on every handler) is in service/infra/observability/logs.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipelines.idnumber import check_number, normalise

# Not inside a longer run of letters or digits (a hash, a token), except right after a %XX escape: in an access
# log's path or query an ID number follows `%3D`, `%20`, `%2F` as often as `=` or `/`. Written as people type and
# print it too: grouped by spaces, hyphens, `+` or `%20` (a space in a URL), `110105 19491231 002X` or
# `1101 0519 4912 3100 2X`, at most one separator between two characters; full-width digits and X (a Chinese
# input method's full-width mode) as well, dashes, and the check digit X as a phone offers it (Ⅹ ⅹ × ✕ Χ χ): what
# pipelines.idnumber.normalise reads as a number.
_SEPARATOR = r"(?:[ \-+\u3000\u2010-\u2015\u2212\ufe58\ufe63\uff0d]|%20)"
_CHECK = "\\dXx\uff38\uff58\u2169\u2179\u00d7\u2715\u03a7\u03c7"
_START = r"(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2}))"
_END = r"(?![0-9A-Za-z])"
ID_SEPARATOR = re.compile(_SEPARATOR)
ID_PATTERN = re.compile(rf"{_START}\d(?:{_SEPARATOR}?\d){{16}}{_SEPARATOR}?[{_CHECK}]{_END}")
# A first-generation number: 15 digits (no check digit), written the same ways. Masked only when it is one (a known
# region code and a calendar date, pipelines.idnumber's rules for its 18-digit form), so that other 15-digit
# numbers (an order number, a device's IMEI, a timestamp in microseconds) stay as they are.
LEGACY_PATTERN = re.compile(rf"{_START}\d(?:{_SEPARATOR}?\d){{14}}{_END}")
# Input fields an ID number is typed into take this many characters: the number is normalised (normalise_id)
# before it is judged, so 18 characters with a space between each, or typed with some around it, still fit. The
# one bound for every such field (the H5 forms and pages, the relatives' API, the API's lookups, the console).
ID_INPUT_MAX = 64


def mask_id(id_number: str) -> str:
    """3701**********1234: enough for a person to recognise, useless to anyone else."""
    if len(id_number) < 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def mask_text(text: str) -> str:
    """Every ID number in `text` masked as `mask_id` shows it (its separators dropped): an 18-character one, and
    a 15-digit first-generation one that is valid."""
    return LEGACY_PATTERN.sub(_masked_legacy, ID_PATTERN.sub(_masked_number, text))


def _masked_number(m: re.Match[str]) -> str:
    parts = ID_SEPARATOR.split(m.group())
    # Single digits between separators are a list of numbers (`0 0 0 …`), not a number written in groups.
    return mask_id("".join(parts)) if min(map(len, parts)) >= 2 else m.group()


def _masked_legacy(m: re.Match[str]) -> str:
    # normalise: full-width digits to ASCII, then the 18-digit form (19 before the year, its check digit).
    return _masked_number(m) if check_number(normalise(ID_SEPARATOR.sub("", m.group()))).valid else m.group()


# A run of 14 or more digits (an X among them), full-width too: most of an ID number even when it is not a whole
# one (an OCR read of the number line that lost the check digit to glare, or picked up a stray digit; a number
# typed in full-width as an external id): ID_PATTERN (exactly 18) misses it.
_DIGIT = "0-9\uff10-\uff19"
DIGIT_RUN = re.compile(rf"(?<![{_DIGIT}A-Za-z])[{_DIGIT}][{_DIGIT}Xx\uff38\uff58]{{13,}}(?![{_DIGIT}A-Za-z])")


def mask_number_reads(text: str) -> str:
    """mask_text, and any long run of digits masked as a number is: for text read off an ID card."""
    return DIGIT_RUN.sub(lambda m: mask_id(m.group()), mask_text(text))


def mask_values(value: Any, mask: Callable[[str], str] = mask_text) -> Any:
    """`value` (a JSON-like tree: dicts, lists, text, numbers) with `mask` applied to every text in it; a score or a
    count is never touched (`0.12345678901234567` is a float)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [mask_values(v, mask) for v in value]
    if isinstance(value, dict):
        return {k: mask_values(v, mask) for k, v in value.items()}
    return value


def normalise_id(id_number: str) -> str:
    """Typed input in the printed form (full-width digits and X, spaces, 15-digit numbers): pipelines.idnumber."""
    return normalise(id_number)


class Keyring:
    """Field encryption and keyed hashes, from the settings' keys. Fields are sealed with the current data key and
    opened with the first key that authenticates them: the current one, then each previous one
    (PENSION_CERT_MEDIA_KEYS_PREVIOUS, while `pension-cert rekey` re-seals what they sealed).

    Keyed hashes likewise: computed with the current signing key, and a stored or presented one is recognised
    under it or any previous one (PENSION_CERT_SIGNING_KEYS_PREVIOUS): look-ups ask for `id_hashes`/`macs` (every
    key's, current first), checks ask `verify_mac`; `pension-cert rekey` recomputes the stored look-up hashes. A
    leaked signing key (PENSION_CERT_SIGNING_KEYS_LEAKED) is a look-up key only: `id_hashes`/`macs` still make its
    hash (what it stored is found, and the rekey moves it), `verify_mac` never accepts its MAC (whoever holds it
    could sign any cookie, form token or certificate code)."""

    def __init__(
        self,
        data_key: bytes,
        signing_key: str,
        previous_data_keys: Sequence[bytes] = (),
        previous_signing_keys: Sequence[str] = (),
        leaked_signing_keys: Sequence[str] = (),
    ) -> None:
        self._aead = AESGCM(data_key)
        self._previous = [AESGCM(k) for k in previous_data_keys if k != data_key]
        # The current key signs whatever the lists say (the settings refuse it as leaked); a key listed both as
        # previous and leaked is leaked (the settings refuse that too).
        leaked = [k for k in dict.fromkeys(leaked_signing_keys) if k != signing_key]
        trusted = [k for k in dict.fromkeys(previous_signing_keys) if k != signing_key and k not in leaked]
        self._hmac_keys = [_hmac_key(k) for k in (signing_key, *trusted)]  # verify: what a client presents
        self._lookup_keys = [*self._hmac_keys, *(_hmac_key(k) for k in leaked)]  # find: what is stored

    @property
    def rotating(self) -> bool:
        """A previous or leaked signing key is in use: a stored hash may still be under it."""
        return len(self._lookup_keys) > 1

    def id_hash(self, id_number: str) -> str:
        return self.mac("id:" + normalise_id(id_number))

    def id_hashes(self, id_number: str) -> tuple[str, ...]:
        """`id_hash` under every signing key in use (leaked ones included), the current one first: what a stored
        hash may be."""
        return self.macs("id:" + normalise_id(id_number))

    def mac(self, text: str) -> str:
        return _mac(self._hmac_keys[0], text)

    def macs(self, text: str) -> tuple[str, ...]:
        """`mac` under every signing key in use, the current one first, leaked ones last: to find a stored value
        (a look-up hash, an account id), never to accept one a client presents (`verify_mac`)."""
        return tuple(_mac(key, text) for key in self._lookup_keys)

    def key_names(self, prefix: str, key: str) -> tuple[str, ...]:
        """An API key's actor name (`api:<8 hex>`, `admin:<8 hex>`) under each signing key in use, the current one
        first: audit entries and relatives' accounts name a key by it, never by the key itself."""
        return tuple(prefix + mac[:8] for mac in self.macs("apikey:" + key))

    def verify_mac(self, text: str, mac: str, length: int | None = None) -> bool:
        """`mac` (or its first `length` characters) is the MAC of `text` under the current or a previous signing
        key; never a leaked one's."""
        # Bytes: compare_digest raises TypeError on non-ASCII str, and a hostile value must be a refusal, not a 500.
        given = mac.encode()
        found = False
        for expected in (_mac(key, text) for key in self._hmac_keys):
            found |= hmac.compare_digest(expected[:length].encode(), given)
        return found

    def encrypt_field(self, value: str, context: str) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, value.encode(), context.encode())
        return base64.b64encode(nonce + ct).decode()

    def decrypt_field(self, token: str, context: str) -> str:
        """The value; InvalidTag when no key in use authenticates it (tampered, or sealed with a key dropped)."""
        return self._opened(token, context)[0]

    def reseal_field(self, token: str, context: str) -> str | None:
        """The value sealed anew with the current key when a previous key sealed it; None when the current key
        did (nothing to do). InvalidTag when no key in use authenticates it."""
        value, current = self._opened(token, context)
        return None if current else self.encrypt_field(value, context)

    def _opened(self, token: str, context: str) -> tuple[str, bool]:
        raw = base64.b64decode(token)
        for i, aead in enumerate([self._aead, *self._previous]):
            try:
                return aead.decrypt(raw[:12], raw[12:], context.encode()).decode(), i == 0
            except InvalidTag:
                continue
        raise InvalidTag


def _hmac_key(signing_key: str) -> bytes:
    return hashlib.sha256(b"pension-cert/hmac/" + signing_key.encode()).digest()


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def new_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
