"""Small files that claim to be huge: image, video and XLSX bombs, and a runner that measures their cost.

Most builders return bytes of a few kilobytes whose header declares an enormous picture, frame or sheet; two
return a small picture split into millions of parts (`jpeg_segment_bomb`, `png_chunk_bomb`).
``python -m fuzz.bombs`` feeds every bomb to its parser in a fresh process and prints, as JSON, the reason
code and the process's peak-memory growth (``ru_maxrss``): intake must refuse them before decoding.
"""

from __future__ import annotations

import io
import json
import re
import resource
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def _image(fmt: str, size: tuple[int, int] = (64, 64)) -> bytearray:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 60, 30)).save(buf, format=fmt)
    return bytearray(buf.getvalue())


def png_bomb(width: int, height: int) -> bytes:
    """A 64x64 PNG whose IHDR claims width x height (CRC fixed, so it parses)."""
    data = _image("PNG")
    i = data.index(b"IHDR")
    data[i + 4 : i + 12] = struct.pack(">II", width, height)
    data[i + 17 : i + 21] = struct.pack(">I", zlib.crc32(bytes(data[i : i + 17])))
    return bytes(data)


def jpeg_bomb(width: int, height: int) -> bytes:
    """A 64x64 baseline JPEG whose SOF0 segment claims width x height (at most 65535 each)."""
    data = _image("JPEG")
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_bomb(width: int, height: int) -> bytes:
    """A lossy WebP whose VP8 key-frame header claims width x height (at most 16383 each)."""
    data = _image("WEBP")
    i = data.index(b"\x9d\x01\x2a")
    data[i + 3 : i + 7] = struct.pack("<HH", width & 0x3FFF, height & 0x3FFF)
    return bytes(data)


def webm(width: int, height: int, frames: int = 20, fps: int = 10) -> bytes:
    """A real VP8 WebM of flat grey frames (fast to encode)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as c:
        s = c.add_stream("libvpx", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"deadline": "realtime", "cpu-used": "8"}
        img = np.zeros((height, width, 3), np.uint8)
        for k in range(frames):
            img[:] = 40 + k * 5
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def vp8_declaring(width: int, height: int) -> bytes:
    """A 256x256 WebM whose track header and VP8 key frames claim width x height (at most 16383 each)."""
    data = bytearray(webm(256, 256))
    for element in (b"\xb0", b"\xba"):  # Matroska PixelWidth, PixelHeight (2-byte values)
        i = data.index(element + b"\x82" + struct.pack(">H", 256))
        data[i + 2 : i + 4] = struct.pack(">H", width if element == b"\xb0" else height)
    for m in re.finditer(re.escape(b"\x9d\x01\x2a"), bytes(data)):  # 0x2a is "*" in a pattern
        if data[m.end() : m.end() + 4] == struct.pack("<HH", 256, 256):
            data[m.end() : m.end() + 4] = struct.pack("<HH", width & 0x3FFF, height & 0x3FFF)
    return bytes(data)


def webm_hiding_frames(real: int = 640, declared: int = 256) -> bytes:
    """A WebM whose track header says declared x declared while the VP8 frames are real x real."""
    data = bytearray(webm(real, real))
    for element in (b"\xb0", b"\xba"):  # Matroska PixelWidth, PixelHeight (2-byte values)
        i = data.index(element + b"\x82" + struct.pack(">H", real))
        data[i + 2 : i + 4] = struct.pack(">H", declared)
    return bytes(data)


def frame_bomb(width: int, height: int, frames: int, per_second: int, fmt: str = "mp4", gop: int = 50) -> bytes:
    """Many frames of one flat picture in few bytes (review: media 1): a key frame, then `gop` - 1 H.264 P-frames of a
    few dozen bytes each repeated to `frames` packets, `per_second` of them per second of video; in Matroska,
    `per_second` may exceed its millisecond timestamps' 1000, so that many frames share one timestamp."""
    enc = io.BytesIO()
    with av.open(enc, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "ultrafast", "bframes": "0", "keyint": str(gop + 1), "scenecut": "0", "crf": "40"}
        frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 100, np.uint8), format="bgr24")
        for k in range(gop):
            frame.pts = k
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    enc.seek(0)
    out = io.BytesIO()
    with av.open(enc, "r") as src, av.open(out, "w", format=fmt) as dst:
        s_in = src.streams.video[0]
        packets = [(bytes(p), p.is_keyframe) for p in src.demux(s_in) if p.size]
        s_out = dst.add_stream_from_template(s_in)
        tick = Fraction(1, 1000) if fmt == "matroska" else Fraction(1, per_second)
        s_out.time_base = tick
        for n in range(frames):
            body, key = packets[0] if n == 0 else packets[1 + (n - 1) % (len(packets) - 1)]  # one key frame
            packet = av.Packet(body)
            packet.stream, packet.time_base, packet.is_keyframe = s_out, tick, key
            packet.pts = packet.dts = n * 1000 // per_second if fmt == "matroska" else n
            dst.mux(packet)
    return out.getvalue()


def jpeg_scan_bomb(width: int, height: int, scans: int) -> bytes:
    """A grey progressive JPEG followed by `scans` empty AC scans of 10 bytes each (review: media 2): libjpeg walks
    every block of the picture once per scan (about 1 ms per scan at 16 MP) and only warns of the bogus progression."""
    buf = io.BytesIO()
    Image.new("L", (width, height), 128).save(buf, "JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    first = data.index(b"\xff\xda")
    end = first + 2 + struct.unpack(">H", data[first + 2 : first + 4])[0]
    while data[end] != 0xFF or data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:  # the first scan's entropy data
        end += 1
    dht = b"\xff\xc4\x00\x14\x10" + bytes([1] + [0] * 15) + b"\x00"  # one AC table: a single code, for EOB
    empty_ac = b"\xff\xda\x00\x08\x01\x01\x00\x01\x3f\x00"  # one component, spectral 1..63, no data
    return data[:end] + dht + empty_ac * scans + b"\xff\xd9"


def jpeg_segment_bomb(segments: int, size: tuple[int, int] = (800, 500)) -> bytes:
    """A small baseline JPEG with `segments` empty comment segments (4 bytes each) after its start: Pillow reads
    each segment before the first scan in Python, one call each (3.5 million in 14 MB took 11.5 CPU-s to decode)."""
    data = bytes(_image("JPEG", size))
    return data[:2] + b"\xff\xfe\x00\x02" * segments + data[2:]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_chunk_bomb(chunks: int, size: tuple[int, int] = (800, 500)) -> bytes:
    """A small PNG with `chunks` empty private chunks (12 bytes each) before its image data: Pillow reads each one
    in Python (1.1 million in 14 MB took 13 CPU-s of the API's upload check)."""
    data = bytes(_image("PNG", size))
    at = data.index(b"IDAT") - 4
    return data[:at] + _png_chunk(b"quUX", b"") * chunks + data[at:]


def png_in_small_chunks(size: tuple[int, int], chunk: int) -> bytes:
    """A real PNG (noise: its image data does not shrink) whose image data is split into chunks of `chunk` bytes,
    as some encoders write it."""
    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, format="PNG")
    data = buf.getvalue()
    at = data.index(b"IDAT") - 4
    body = b"".join(
        data[i + 8 : i + 8 + struct.unpack(">I", data[i : i + 4])[0]]
        for i in _png_chunk_offsets(data)
        if data[i + 4 : i + 8] == b"IDAT"
    )
    idat = b"".join(_png_chunk(b"IDAT", body[i : i + chunk]) for i in range(0, len(body), chunk))
    return data[:at] + idat + _png_chunk(b"IEND", b"")


def _png_chunk_offsets(data: bytes) -> list[int]:
    out, pos = [], 8
    while pos + 8 <= len(data):
        out.append(pos)
        pos += 12 + struct.unpack(">I", data[pos : pos + 4])[0]
    return out


def _xlsx(sheet_xml: Callable[[zipfile.ZipFile], None] | None = None, rows: int = 2) -> bytes:
    """A real roster workbook; ``sheet_xml`` replaces the first sheet's XML (written in streaming mode)."""
    from openpyxl import Workbook  # type: ignore[import-untyped]

    wb = Workbook()
    ws = wb.active
    ws.append(["external_id", "id_number", "name", "benefit_types"])
    for k in range(rows - 1):
        ws.append([f"P{k}", "370102195003140123", "张三", "enterprise_pension"])
    buf = io.BytesIO()
    wb.save(buf)
    if sheet_xml is None:
        return buf.getvalue()
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        for info in src.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                sheet_xml(dst)
            else:
                dst.writestr(info, src.read(info.filename))
    return out.getvalue()


_SHEET_HEAD = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
_HEADER_ROW = (
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>external_id</t></is></c><c r="B1" t="inlineStr"><is><t>id_number'
    b'</t></is></c><c r="C1" t="inlineStr"><is><t>name</t></is></c><c r="D1" t="inlineStr"><is><t>benefit_types'
    b"</t></is></c></row>"
)


def xlsx_zip_bomb(uncompressed: int = 256 * 1024 * 1024) -> bytes:
    """An XLSX whose sheet XML inflates to `uncompressed` bytes of whitespace (about 1000:1)."""

    def sheet(dst: zipfile.ZipFile) -> None:
        info = zipfile.ZipInfo("xl/worksheets/sheet1.xml")
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = 1  # type: ignore[attr-defined]  # fast: whitespace compresses well anyway
        with dst.open(info, "w", force_zip64=True) as f:
            f.write(_SHEET_HEAD + b"<sheetData>" + _HEADER_ROW)
            chunk = b" " * (1 << 20)
            for _ in range(uncompressed >> 20):
                f.write(chunk)
            f.write(b"</sheetData></worksheet>")

    return _xlsx(sheet)


def xlsx_dimension_bomb() -> bytes:
    """An XLSX declaring the largest sheet (A1:XFD1048576) with a cell in its last row: a tiny file."""

    def sheet(dst: zipfile.ZipFile) -> None:
        xml = (
            _SHEET_HEAD
            + b'<dimension ref="A1:XFD1048576"/><sheetData>'
            + _HEADER_ROW
            + b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData></worksheet>'
        )
        dst.writestr("xl/worksheets/sheet1.xml", xml)

    return _xlsx(sheet)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _outcome(parse: Callable[[bytes], object], data: bytes) -> dict[str, object]:
    from pipelines.errors import PipelineError
    from service.certification.errors import ServiceError

    before = _peak_mb()
    try:
        parse(data)
        code = "ACCEPTED"
    except PipelineError as exc:
        code = exc.reason.value
    except ServiceError as exc:
        code = exc.code
    return {"code": code, "bytes": len(data), "peak_growth_mb": round(_peak_mb() - before, 1)}


def _decode_video(data: bytes) -> None:
    from pipelines.liveness.video import decode_all

    decode_all(data)


def _read_roster(name: str) -> Callable[[bytes], object]:
    from service.certification.roster import read_table

    return lambda data: sum(1 for _ in read_table(name, data))


def _parsers() -> dict[str, tuple[Callable[[bytes], object], Callable[[], bytes]]]:
    """Per group: the parser under test and a harmless input to warm it up with."""
    from pipelines.media import decode_image

    return {
        "images": (decode_image, lambda: bytes(_image("PNG"))),
        "videos": (_decode_video, lambda: webm(160, 160, frames=18)),
        "xlsx": (_read_roster("r.xlsx"), lambda: _xlsx(rows=3)),
    }


BOMBS: dict[str, dict[str, Callable[[], bytes]]] = {
    "images": {
        "png_100000x100000": lambda: png_bomb(100_000, 100_000),
        "png_9000x9000": lambda: png_bomb(9000, 9000),
        "jpeg_65500x65500": lambda: jpeg_bomb(65500, 65500),
        "jpeg_10000x5000": lambda: jpeg_bomb(10_000, 5000),
        "webp_16383x16383": lambda: webp_bomb(16383, 16383),
        "jpeg_3500000_comments": lambda: jpeg_segment_bomb(3_500_000),
        "png_1100000_chunks": lambda: png_chunk_bomb(1_100_000),
    },
    "videos": {
        "vp8_16383x16383": lambda: vp8_declaring(16383, 16383),
        "webm_hiding_3072x3072": lambda: webm_hiding_frames(3072, 256),  # over the 3840x2160 pixel limit
    },
    "xlsx": {
        "xlsx_zip_bomb_1GiB": lambda: xlsx_zip_bomb(1 << 30),
        "xlsx_dimension_bomb": xlsx_dimension_bomb,
    },
}


def measure(group: str, path: str) -> dict[str, object]:
    """In this (fresh) process: warm the parser up on a harmless input, then parse the bomb and measure."""
    parse, harmless = _parsers()[group]
    _outcome(parse, harmless())
    return _outcome(parse, Path(path).read_bytes())


def run(group: str) -> dict[str, dict[str, object]]:
    """Build each bomb here, then parse it in a fresh process: building must not hide the parser's peak."""
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in BOMBS[group].items():
            path = Path(tmp) / name
            path.write_bytes(make())
            cmd = [sys.executable, "-m", "fuzz.bombs", "--measure", group, str(path)]
            results[name] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        sys.stdout.write(json.dumps(measure(sys.argv[2], sys.argv[3])) + "\n")
    else:
        groups = sys.argv[1:] or list(BOMBS)
        sys.stdout.write(json.dumps({g: run(g) for g in groups}, indent=1) + "\n")
