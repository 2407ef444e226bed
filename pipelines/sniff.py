"""What a file is, from its bytes: magic numbers first (a declared Content-Type or a file name is only a hint).

The one home for typing uploads and command-line inputs: the API and H5 uploads (through
``service.certification.sessions.upload``) and the CLI's input checks call it. Standard library only, so that the
command line
can refuse a PDF given as a photo before any model loads. Deeper checks (a JPEG cut short, an MP4 without its
index) stay with the decoders: this module only says what the content claims to be.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Sniffed:
    mime: str  # the content's own type, e.g. "image/jpeg"
    kind: str  # "image", "video" or "other"
    name: str  # for messages: "a JPEG image", "a PDF document"


def _ftyp(data: bytes) -> Sniffed | None:
    # ISO-BMFF: a box size then "ftyp" and the major brand. QuickTime files may start with other boxes.
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis"):
            return Sniffed("image/heic", "image", "a HEIC photo (set the camera to JPEG, or send a screenshot)")
        if brand == b"avif":
            return Sniffed("image/avif", "image", "an AVIF image")
        if brand == b"qt  ":
            return Sniffed("video/quicktime", "video", "a QuickTime (MOV) video")
        return Sniffed("video/mp4", "video", "an MP4 video")
    if data[4:8] in (b"moov", b"mdat", b"free", b"wide", b"skip"):
        return Sniffed("video/quicktime", "video", "a QuickTime (MOV) video")
    return None


def _riff(data: bytes) -> Sniffed | None:
    if data[:4] != b"RIFF":
        return None
    form = data[8:12]
    if form == b"WEBP":
        return Sniffed("image/webp", "image", "a WebP image")
    if form == b"AVI ":
        return Sniffed("video/x-msvideo", "video", "an AVI video")
    if form == b"WAVE":
        return Sniffed("audio/wav", "other", "a WAV sound file")
    return Sniffed("application/octet-stream", "other", "a RIFF file")


# (offset, signature, result): checked in order, first match wins.
_SIGNATURES: tuple[tuple[int, bytes, Sniffed], ...] = (
    (0, b"\xff\xd8\xff", Sniffed("image/jpeg", "image", "a JPEG image")),
    (0, b"\x89PNG\r\n\x1a\n", Sniffed("image/png", "image", "a PNG image")),
    (0, b"GIF87a", Sniffed("image/gif", "image", "a GIF image")),
    (0, b"GIF89a", Sniffed("image/gif", "image", "a GIF image")),
    (0, b"BM", Sniffed("image/bmp", "image", "a BMP image")),
    (0, b"II*\x00", Sniffed("image/tiff", "image", "a TIFF image")),
    (0, b"MM\x00*", Sniffed("image/tiff", "image", "a TIFF image")),
    (0, b"\x1a\x45\xdf\xa3", Sniffed("video/webm", "video", "a WebM/Matroska video")),
    (0, b"%PDF-", Sniffed("application/pdf", "other", "a PDF document")),
    (0, b"PK\x03\x04", Sniffed("application/zip", "other", "a ZIP archive (or an Office document)")),
    (0, b"PK\x05\x06", Sniffed("application/zip", "other", "a ZIP archive (or an Office document)")),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Sniffed("application/x-ole-storage", "other", "an old Office document")),
    (0, b"\x1f\x8b", Sniffed("application/gzip", "other", "a gzip archive")),
    (0, b"Rar!\x1a\x07", Sniffed("application/vnd.rar", "other", "a RAR archive")),
    (0, b"7z\xbc\xaf\x27\x1c", Sniffed("application/x-7z-compressed", "other", "a 7z archive")),
    (0, b"\x7fELF", Sniffed("application/x-executable", "other", "a program (ELF)")),
    (0, b"MZ", Sniffed("application/x-msdownload", "other", "a Windows program")),
    (0, b"ID3", Sniffed("audio/mpeg", "other", "an MP3 sound file")),
    (0, b"OggS", Sniffed("application/ogg", "other", "an Ogg media file")),
    (0, b"#!AMR", Sniffed("audio/amr", "other", "an AMR voice message")),
    (0, b"\x00\x00\x01\xba", Sniffed("video/mpeg", "video", "an MPEG program stream video")),
)

_EMPTY = Sniffed("application/x-empty", "other", "an empty file")
_UNKNOWN = Sniffed("application/octet-stream", "other", "a file of unknown type")


def _text(data: bytes) -> Sniffed | None:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"<",) and b"<svg" in data[:1024].lower():
        return Sniffed("image/svg+xml", "other", "an SVG drawing")
    if head[:5].lower() in (b"<!doc", b"<html"):
        return Sniffed("text/html", "other", "an HTML page")
    try:
        data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if all(b >= 0x20 or b in b"\t\r\n" for b in data[:512]):
        return Sniffed("text/plain", "other", "a text file")
    return None


def sniff(data: bytes) -> Sniffed:
    """What the first bytes say the content is (the first 64 bytes suffice for every signature here)."""
    if not data:
        return _EMPTY
    for found in (_ftyp(data), _riff(data)):
        if found is not None:
            return found
    for offset, signature, result in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return result
    return _text(data) or _UNKNOWN


def media_mismatch(data: bytes, kind: str, accepted: Collection[str] | None = None) -> str | None:
    """Why these bytes are not an acceptable ``kind`` ("image" or "video"), in words naming what they are;
    None when they are (``accepted``: the MIME types allowed, default every type of that kind)."""
    found = sniff(data)
    if found.kind == kind and (accepted is None or found.mime in accepted):
        return None
    if found.kind == kind:
        return f"content is {found.name} ({found.mime}); accepted: {', '.join(sorted(accepted or ()))}"
    return f"content is {found.name} ({found.mime}), not {'an image' if kind == 'image' else 'a video'}"


def accepted_type(data: bytes, kind: str, accepted: Collection[str], declared: str = "") -> str:
    """The MIME type of an upload of ``kind`` from its bytes, or MediaError(MEDIA_UNSUPPORTED) naming what the
    content is. ``declared`` (the client's Content-Type) is only a hint: it never decides, and most clients send
    ``application/octet-stream`` anyway; it appears in the message when it disagrees with the content."""
    from pipelines.errors import MediaError
    from pipelines.reasons import ReasonCode

    mismatch = media_mismatch(data, kind, accepted)
    if mismatch is None:
        return sniff(data).mime
    base = declared.split(";")[0].strip().lower()
    hint = f" (declared {base})" if base and base != sniff(data).mime else ""
    raise MediaError(ReasonCode.MEDIA_UNSUPPORTED, mismatch + hint)
