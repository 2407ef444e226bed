"""Reading a roster file as bureau staff save it from Excel or WPS: a CSV or an XLSX workbook.

A CSV's encoding is found in this order: a UTF-16 byte order mark (Excel's "Unicode 文本", tab-separated), UTF-8
(with or without its BOM), then GB18030 (a superset of GBK, which Chinese Excel's "CSV (逗号分隔)" writes; its
four-byte forms carry the rare characters, 生僻字, that GBK lacks; read as GB18030-2022 reads it, `gb18030_2022`).
A file that is none of them is refused naming the line and byte where it stops decoding; so is UTF-8 text with a
damaged character (never read as GB18030, every name garbled), a UTF-16 file cut short, and a GB18030-read file
whose names no Chinese name could be or read better as Big5 (roster_big5), or whose names are a Western-locale
Excel's Latin-1 / Windows-1252 ones, Han characters run into Latin letters. The delimiter is the first of comma,
tab and semicolon that splits the header into the required columns. Header names are read case-insensitively and
may be the documented Chinese ones (HEADER_ALIASES). Excel's empty trailing columns and rows are ignored; a row's
non-empty cells beyond the header are handed on (EXTRA_CELLS) for the row to be refused. See docs/service.md,
"Roster columns".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from pipelines.names import DOT_VARIANTS, HAN, fold_table, in_gb2312
from service.certification.errors import ServiceError, UnsupportedFormatError
from service.certification.roster_big5 import Big5Reading, private_character

REQUIRED = ("external_id", "id_number", "name", "benefit_types")
# XLSX bombs: a few kilobytes can inflate to gigabytes of XML, or declare a 16384-column, million-row sheet
# whose empty cells openpyxl would fill in one by one. The zip's declared sizes bound what it inflates.
MAX_XLSX_INFLATED = 512 * 1024 * 1024
MAX_COLUMNS = 64
MAX_ROWS = 200_000
MAX_SHEET_ROWS = 2 * MAX_ROWS  # blank rows included
# A text cell starting like a spreadsheet formula would run when staff open an export in Excel.
FORMULA_START = ("=", "+", "-", "@")
DELIMITERS = (",", "\t", ";")
# The Chinese column names staff type (the console's own words for the columns, and the usual ones of the
# benefit systems' exports); documented in docs/service.md.
HEADER_ALIASES = {
    "人员编号": "external_id",
    "个人编号": "external_id",
    "身份证号": "id_number",
    "身份证号码": "id_number",
    "公民身份号码": "id_number",
    "姓名": "name",
    "地区": "region",
    "行政区划代码": "region",
    "待遇类型": "benefit_types",
    "状态": "status",
    "认证有效期": "valid_until",
    "户号": "household",
    "最近认证日期": "last_certified_on",
    "认证周期起始日": "cycle_start",
}
COLUMNS = frozenset(HEADER_ALIASES.values())
UNDECODABLE = "CSV is neither UTF-8 nor GB18030 (GBK) text"
DAMAGED_UTF8 = "CSV is UTF-8 text with a damaged character"
DAMAGED_UTF16 = "CSV is UTF-16 text (Excel's Unicode text) cut short or damaged"
NOT_GB18030 = "CSV read as GB18030 gives names no Chinese name holds: the encoding may not be GBK/GB18030 (Big5?)"
NOT_GB18030_WESTERN = (
    "CSV read as GB18030 gives names with Chinese characters run into Latin letters: the encoding may be a Western "
    "one (Latin-1/Windows-1252)"
)
_LATIN = re.compile("[A-Za-z]")
_HAN = re.compile(f"[{HAN}]")
# The bytes of Windows-1252's (and, from 0xC0, Latin-1's) accented letters, and of its typographic apostrophes.
_CP1252_LOWER = frozenset("šœžßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿ".encode("cp1252"))
_CP1252_LETTERS = _CP1252_LOWER | frozenset("ŠŒŽŸ‘’ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞ".encode("cp1252"))
# A Western name's no-break space and ´ (typed for an apostrophe): read as GB18030, with the byte after them a Han
# character (Jean燚upont, D碅ngelo) that tells neither way; the name's other characters tell.
_CP1252_BETWEEN = frozenset("\u00a0´".encode("cp1252"))
# A byte of a Western name's text: an accented letter, an apostrophe, a no-break space or ´.
_CP1252_TEXT = _CP1252_LETTERS | _CP1252_BETWEEN
# ©'s byte: before a letter, one of GBK's compatibility symbols (Smith©Jones as Smith㎎ones), which no name holds.
_COPYRIGHT = "©".encode("cp1252")[0]
_NOT_WIDE_LEAD = bytes(b for b in range(256) if not 0xE0 <= b <= 0xF4)
# A row with non-empty cells beyond the header (an unquoted delimiter inside a cell); the key, with its leading
# space, is no header's (header names are stripped).
EXTRA_CELLS = " extra cells"
# A date as Excel shows (and saves as CSV) a date cell on a Chinese Windows: year first, so never ambiguous.
_SHOWN_DATE = re.compile(r"^([0-9]{4})(?:([-/.])([0-9]{1,2})\2([0-9]{1,2})|年([0-9]{1,2})月([0-9]{1,2})日)\Z")
# ="…": the text form some systems export a long number in, so that Excel keeps it as text.
_TEXT_FORMULA = re.compile(r'^="([^"]*)"\Z')


@dataclass
class Table:
    """A roster file opened: its rows, and the encoding its text was read in (None: a workbook)."""

    encoding: str | None
    rows: Iterator[tuple[int, dict[str, str]]]


def open_table(filename: str, data: bytes) -> Table:
    """The file's (line number, row) pairs, header names lower-cased and aliased; a CSV is decoded at once."""
    name = filename.lower()
    if "\x00" in name:  # stored with the import: PostgreSQL takes no NUL in a text column (was a 500)
        raise ServiceError("ROSTER_FORMAT", "file name must not contain a NUL character")
    if name.endswith(".xlsx") or data[:2] == b"PK":
        return Table(None, _read_xlsx(data))
    if name.endswith(".csv") or name.endswith(".txt"):
        text, encoding = decode_csv(data)
        rows = _read_csv(text)
        return Table(encoding, _checked_names(rows) if encoding == "GB18030" else rows)
    raise UnsupportedFormatError("ROSTER_FORMAT", "roster must be .csv or .xlsx")


def read_table(filename: str, data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    yield from open_table(filename, data).rows


def decode_csv(data: bytes) -> tuple[str, str]:
    """The file's text and the name of its encoding (UTF-16, UTF-8 (BOM), UTF-8 or GB18030)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError as exc:  # cut short (an odd byte count) or damaged: not a question of encoding
            raise _undecodable(data, "utf-16", exc, DAMAGED_UTF16) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as utf8:
        if _damaged_utf8(data):  # read as GB18030 it was every name garbled (张三 as 寮犱笁)
            raise _undecodable(data, "utf-8", utf8, DAMAGED_UTF8) from utf8
        try:
            return gb18030_2022(data.decode("gb18030").removeprefix("\ufeff")), "GB18030"
        except UnicodeDecodeError as gb:
            # Where the likelier encoding (the one that read further) stops is what staff should look at.
            worst = (utf8, "utf-8") if utf8.start >= gb.start else (gb, "gb18030")
            raise _undecodable(data, worst[1], worst[0]) from gb
    return (text[1:], "UTF-8 (BOM)") if text.startswith("\ufeff") else (text, "UTF-8")


# GB18030-2022's new mappings of ideographs: Python's codec (GB18030-2000/2005 tables) decodes these two-byte codes
# (FE59 … FEA0) to the private-use stand-ins, which refused the name as a 造字 (`private_use`); GB18030-2022 maps
# them to the standard characters (their four-byte codes, which Python already reads so, now stand for the stand-ins).
# Source: Unicode L2/22-274 (GB 18030-2022 disruptive changes) and the glibc GB18030-2022 charmap (BZ #30243,
# "UE81E 0x82359037" …). Not mapped: the ten vertical forms (A6D9…, U+E78D–U+E796 to U+FE10–U+FE19), punctuation
# that NFKC turns into a name's comma or full stop, and the six stand-ins for Extension B characters (FE51 for 𠂇,
# U+E816), which GB18030-2022 still maps to private use: those names stay refused for staff to write the character.
GB18030_2022_IDEOGRAPHS = {
    "\ue81e": "\u9fb4",  # FE59 龴
    "\ue826": "\u9fb5",  # FE61 龵
    "\ue82b": "\u9fb6",  # FE66 龶
    "\ue82c": "\u9fb7",  # FE67 龷
    "\ue832": "\u9fb8",  # FE6D 龸
    "\ue843": "\u9fb9",  # FE7E 龹
    "\ue854": "\u9fba",  # FE90 龺
    "\ue864": "\u9fbb",  # FEA0 龻
}


def gb18030_2022(text: str) -> str:
    """GB18030 text as GB18030-2022 reads it (`GB18030_2022_IDEOGRAPHS`): a search per stand-in, in C, so that a
    64 MiB roster without them is not copied."""
    for stand_in, standard in GB18030_2022_IDEOGRAPHS.items():
        if stand_in in text:
            text = text.replace(stand_in, standard)
    return text


def _damaged_utf8(data: bytes) -> bool:
    """UTF-8 text with a few bad bytes (a character cut or changed), not another encoding: read as UTF-8 it gives
    more three- and four-byte characters (Chinese ones) than undecodable places. GBK text read as UTF-8 gives an
    undecodable place at nearly every character (the few byte runs that happen to be UTF-8 stay fewer). A file
    with a single Chinese character, damaged, is beyond telling: read as GB18030, as before."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    # Counted in C over the text encoded again (a 64 MiB file in a fraction of a second): the lead bytes of three-
    # and four-byte forms, U+FFFD's own among them.
    wide = len(text.encode().translate(None, _NOT_WIDE_LEAD)) - bad
    return wide > bad


def _undecodable(data: bytes, codec: str, exc: UnicodeDecodeError, reason: str = UNDECODABLE) -> ServiceError:
    line = data[: exc.start].decode(codec, errors="replace").count("\n") + 1
    return ServiceError("ROSTER_FORMAT", f"{reason}: cannot decode line {line}, byte {exc.start + 1}")


def check_gb18030_name(line: int, name: str) -> None:
    """A name read from a file decoded as GB18030 that no Chinese name holds (Greek, Cyrillic, kana; private-use
    characters in many names, `_checked_names`): the file is in another encoding, most often Big5 (Taiwan and Hong
    Kong software), which decodes as GB18030 without an error. Extension A and B characters (䶮, 𠈌) are GB18030's
    own and pass. A Western file (Latin-1, Windows-1252) decodes so too: a name that is a Western word's bytes
    (`_western_word`: M黮ler) is refused whatever the file's other names, unless it may be a Chinese name too
    (`_may_be_a_name`: A許B); that one, and one that may be a Western name (`_western_letters`: 蒑ILE), are told
    with their file (`_checked_names`). A Western name's © before a letter is a symbol no name holds
    (Smith㎎ones): refused whatever the file's other names."""
    if _LATIN.search(name) and any(_copyright_symbol(ch) for ch in name if not ch.isascii()):
        raise ServiceError("ROSTER_FORMAT", f"{NOT_GB18030_WESTERN}: line {line}")
    if any(_not_a_name_character(ch) for ch in name):
        raise ServiceError("ROSTER_FORMAT", f"{NOT_GB18030}: line {line}")
    if _LATIN.search(name) and _western_word(name) and not _may_be_a_name(name):
        raise ServiceError("ROSTER_FORMAT", f"{NOT_GB18030_WESTERN}: line {line}")


def _copyright_symbol(ch: str) -> bool:
    code = ch.encode("gb18030")
    return (
        len(code) == 2 and code[0] == _COPYRIGHT and _LATIN.match(chr(code[1])) is not None and ch not in DOT_VARIANTS
    )


def _may_be_a_name(name: str) -> bool:
    """A name that is a Western word's bytes (`_western_word`) but may be a Chinese roster's, Latin letters beside
    Han characters (A許B, Anna韓, Mary王Smith), told by its file (`_checked_names`): every Han character of it one
    names are written in, a GB2312 one (王) or a traditional or variant form of one (許, 韓: the names' fold
    table), and none followed by a lower-case Latin letter, a Western word going on (Mart韓ez, C閏ile). No
    character of M黮ler or Fran鏾ise is a name's."""
    for i, ch in enumerate(name):
        if _HAN.match(ch) and ch.encode("gb18030")[0] not in _CP1252_BETWEEN:
            after = name[i + 1 : i + 2]
            if not (in_gb2312(ch) or ch in fold_table()) or (_LATIN.match(after) and after.islower()):
                return False
    return True


def _western_bytes(name: str) -> bool:
    """Whether a name of Han characters could be a Western name's bytes read as GB18030: each character an accented
    letter's (or a no-break space's, ´'s) byte and a Latin or an accented letter's (李娜 is ÀîÄÈ, 田丽 ÌïÀö: about
    one Chinese name in ten). 张秀英 is not (英 is Ó¢), nor a name with a middle dot (¡¤) or a four-byte character."""
    for ch in name:
        if ch.isascii():
            continue
        code = ch.encode("gb18030")
        if len(code) != 2 or code[0] not in _CP1252_TEXT:
            return False
        if code[1] not in _CP1252_LETTERS and not _LATIN.match(chr(code[1])):
            return False
    return True


def _western_word(name: str) -> bool:
    """A Latin-1 / Windows-1252 name read as GB18030, told by the name alone: an accented letter's byte and the
    byte after it make one Han character. Followed by an ASCII letter, that character's second byte is the letter
    (Müller as M黮ler, Françoise as Fran鏾ise, O’Brien as O払rien, Émile as 蒻ile); two accented letters make a Han
    character inside a word (Gößmann as G鲞mann). Every Han character of the name must be such letters' bytes
    (`_letter_pair`; a no-break space's or ´'s aside, `_CP1252_BETWEEN`), and one of them stand beside a
    lower-case Latin letter, or between two Latin letters (A許B, the bytes of AÔSB, too: one name cannot tell); two
    accented letters, the bytes of many common characters (王, 张), only between two Latin letters, one of them
    lower case."""
    evidence = False
    for i, ch in enumerate(name):
        if _HAN.match(ch):
            code = ch.encode("gb18030")
            if code[0] in _CP1252_BETWEEN:
                continue
            pair = _letter_pair(code)
            if pair is None:
                return False
            around = [c for c in (name[i - 1 : i] if i else "", name[i + 1 : i + 2]) if _LATIN.match(c)]
            lower = any(c.islower() for c in around)
            beside = len(around) == 2 or lower if pair == "ascii" else len(around) == 2 and lower
            evidence = evidence or beside
    return evidence


def _western_letters(name: str) -> bool:
    """A name that may be a Windows-1252 one read as GB18030, told only where no name of its file is Chinese
    (`_checked_names`): every Han character of it the bytes of an accented letter followed by an ASCII letter or a
    second accented letter (`_letter_pair`), one of them beside a Latin letter (ÉMILE as 蒑ILE, CONCEIÇÃO as
    CONCEI敲O), the letters around each in a word's case: no lower-case letter before a capital (王A, the bytes
    of ÍõA, and 韓A, ínA, are Chinese names'). A no-break space's or ´'s byte before a letter (Jean燚upont,
    D碅ngelo) counts as such a character: alone in a Western file, it was imported garbled."""
    beside = False
    for i, ch in enumerate(name):
        if _HAN.match(ch):
            code = ch.encode("gb18030")
            between = len(code) == 2 and code[0] in _CP1252_BETWEEN
            if between and not _LATIN.match(chr(code[1])):
                continue
            if not between and not _letter_pair(code):
                return False
            around = [c if _LATIN.match(c) else "" for c in (name[i - 1 : i] if i else "", name[i + 1 : i + 2])]
            word = around[0] + code.decode("cp1252", errors="replace") + around[1]
            if any(a.islower() and b.isupper() for a, b in itertools.pairwise(word)):
                return False
            beside = beside or any(around)
    return beside


def _letter_pair(code: bytes) -> str | None:
    """Whether a character's two bytes are a Windows-1252 accented letter (or apostrophe) and an ASCII letter
    ("ascii") or another accented letter ("accented"), case kept as in a word (no lower-case letter before an
    upper-case one); None: they are not."""
    if len(code) != 2 or code[0] not in _CP1252_LETTERS:
        return None
    lead, trail = code
    ascii_trail = _LATIN.match(chr(trail)) is not None
    if not ascii_trail and trail not in _CP1252_LETTERS:
        return None
    if lead in _CP1252_LOWER and (chr(trail).isupper() if ascii_trail else trail not in _CP1252_LOWER):
        return None
    return "ascii" if ascii_trail else "accented"


def _not_a_name_character(ch: str) -> bool:
    code = ord(ch)
    return (
        0x0370 <= code <= 0x04FF  # Greek, Cyrillic
        or (0x3040 <= code <= 0x30FF and code != 0x30FB)  # kana (the katakana middle dot is a name's dot)
        or 0x31F0 <= code <= 0x31FF
        or 0xFF66 <= code <= 0xFF9F  # half-width katakana
    )


def private_use(name: str) -> bool:
    """Whether a name holds a private-use character (U+E000–U+F8FF, planes 15 and 16): a legacy system's
    user-defined character (造字, GBK's user-defined areas) or GB18030-2005's stand-in for a rare character, which
    no name typed or read off a card matches. The row is refused (roster_rows.PRIVATE_USE) whatever the file's
    encoding; a GB18030-read file with many such names is Big5 (`_checked_names`)."""
    return any(private_character(ch) for ch in name)


def spreadsheet_text(cell: str) -> str:
    """A cell with the ="…" text form unwrapped (the formula check then sees what is inside)."""
    cell = cell.strip()
    m = _TEXT_FORMULA.match(cell)
    return m.group(1).strip() if m else cell


def spreadsheet_date(text: str) -> dt.date | None:
    """An ISO date, or one as Excel shows it (2026/6/30, 2026-6-30, 2026.6.30, 2026年6月30日); None: neither."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    m = _SHOWN_DATE.match(text)
    if m is None:
        return None
    year, _sep, month, day, zh_month, zh_day = m.groups()
    try:
        return dt.date(int(year), int(month or zh_month), int(day or zh_day))
    except ValueError:  # 2026/2/30
        return None


def spreadsheet_safe(value: str) -> str:
    """An exported cell that would start a formula in Excel (a name stored before the roster refused those),
    behind Excel's text marker."""
    return "'" + value if value.startswith((*FORMULA_START, "\t", "\r")) else value


def _header(cells: list[str]) -> list[str]:
    names = [c.strip().lstrip("\ufeff").strip().lower() for c in cells]
    return [HEADER_ALIASES.get(n, n) for n in names]


def _delimiter(text: str) -> str:
    """The delimiter that splits the header into the most known columns (comma on a tie: a header that names
    none is then refused for the columns it lacks)."""
    first = text.partition("\n")[0]
    found: list[tuple[int, int]] = []
    for rank, delimiter in enumerate(DELIMITERS):
        try:
            header = _header(next(csv.reader([first], delimiter=delimiter), []))
        except csv.Error:  # a header over the field limit: refused by the reader below
            return ","
        found.append((len(COLUMNS.intersection(header)), -rank))
    return DELIMITERS[-max(found)[1]]


def _read_csv(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text))
    try:
        header = _header(next(reader, []))
        _check_header(header)
        for i, values in enumerate(reader, start=2):
            if any(v.strip() for v in values):
                cells = dict(zip(header, (v.strip() for v in values), strict=False))
                beyond = [v.strip() for v in values[len(header) :] if v.strip()]
                if beyond:  # `enterprise_pension;work_injury` unquoted in a semicolon file: was dropped
                    cells[EXTRA_CELLS] = ";".join(beyond)
                yield i, cells
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit(): was a 500 (found by the roster fuzzer)
        raise ServiceError("ROSTER_FORMAT", f"CSV line {reader.line_num}: {exc}") from exc


def _checked_names(rows: Iterator[tuple[int, dict[str, str]]]) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of a GB18030-read file, each name checked (`check_gb18030_name`); after the last (the import writes
    nothing before), the file refused, naming the first such name's line, when a name may be a Latin-1 /
    Windows-1252 one (`_western_letters`: ÉMILE as 蒑ILE) and none is Chinese: Han characters and no Latin letter
    (张秀英, 李娜), which no Western name read so is (its accented letters' bytes are Han characters beside its ASCII
    letters). A Chinese roster's names that put Latin letters beside Han characters (ANNA許, the bytes of ANNAÔS)
    are names; a Western one's ª is no sign of either. A name that is a Western word's bytes but may be a name
    (`_may_be_a_name`: A許B, Anna韓) refuses the file unless one of its Chinese names could not be a Western
    name's bytes (`_western_bytes`: 张秀英 cannot, 李娜 can); the first line refused is named.
    A private-use character (造字) refuses its row only (`private_use`), unless more than one name and over a tenth
    of them hold one: a Big5 file's names do so about every other one (its common characters fall in GBK's
    user-defined areas), a Chinese roster's one in thousands. A file of a few names whose one name, or none, shows
    that sign is refused as Big5 when its names read as Big5 are names and read as GB18030 are not
    (roster_big5.Big5Reading: 張國榮 read as 眎瓣篴)."""
    chinese = clearly = False
    western = doubtful = 0
    names, private, first_private = 0, 0, 0
    big5 = Big5Reading()
    for line, cells in rows:
        name = cells.get("name", "")
        check_gb18030_name(line, name)
        big5.note(line, name)
        names += 1
        if private_use(name):
            private, first_private = private + 1, first_private or line
        if not _LATIN.search(name):
            if _HAN.search(name):
                chinese, clearly = True, clearly or not _western_bytes(name)
        elif _western_word(name):
            doubtful = doubtful or line
        elif not western and _western_letters(name):
            western = line
        yield line, cells
    if private > 1 and private * 10 > names:
        raise ServiceError("ROSTER_FORMAT", f"{NOT_GB18030}: line {first_private}")
    refused = [n for n in (0 if clearly else doubtful, 0 if chinese else western) if n]
    if refused:
        raise ServiceError("ROSTER_FORMAT", f"{NOT_GB18030_WESTERN}: line {min(refused)}")
    # A file of a few names, one or none of them showing Big5's kana or 造字; after the Western check, whose
    # evidence (Latin letters around the Han characters: D碅ngelo) is the more telling of the two.
    if big5_line := big5.refused_line():
        raise ServiceError("ROSTER_FORMAT", f"{NOT_GB18030}: line {big5_line}")


def _read_xlsx(data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    from openpyxl import load_workbook  # type: ignore[import-untyped]  # lazy: openpyxl for XLSX rosters only

    _check_inflated_size(data)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = wb.worksheets[0]
        first = next(sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), ())
        header = _header([str(h or "") for h in first])
        while header and not header[-1]:
            header.pop()
    except Exception as exc:  # openpyxl raises many types for a non-workbook
        raise ServiceError("ROSTER_FORMAT", f"not a readable XLSX workbook: {exc}") from exc
    _check_header(header)
    # Only the header's columns are read, and rows are counted blank ones included (see MAX_XLSX_INFLATED).
    rows = sheet.iter_rows(min_row=2, max_col=len(header), values_only=True)
    try:
        for i, values in enumerate(rows, start=2):
            if i > MAX_SHEET_ROWS:
                raise ServiceError("ROSTER_TOO_LARGE", f"more than {MAX_SHEET_ROWS} sheet rows")
            cells = ["" if v is None else _cell(v) for v in values]
            if any(cells):
                yield i, dict(zip(header, cells, strict=False))
    except ServiceError:
        raise
    except Exception as exc:  # damaged sheet XML or zip member (found by the roster fuzzer: was a 500)
        raise ServiceError("ROSTER_FORMAT", f"damaged XLSX workbook: {exc}") from exc


def _check_inflated_size(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            inflated = sum(info.file_size for info in z.infolist())
    except Exception as exc:  # BadZipFile, NotImplementedError (zip version), EOFError...: found by atheris
        raise ServiceError("ROSTER_FORMAT", f"not a readable XLSX workbook: {exc}") from exc
    if inflated > MAX_XLSX_INFLATED:
        raise ServiceError("ROSTER_TOO_LARGE", f"workbook inflates to {inflated} bytes")


def _cell(v: object) -> str:
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v).strip()


def _check_header(header: list[str]) -> None:
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ServiceError("ROSTER_FORMAT", f"missing columns: {', '.join(missing)}")
    twice = sorted({c for c in header if c in COLUMNS and header.count(c) > 1})
    if twice:  # 姓名 and name both: which one is the name?
        raise ServiceError("ROSTER_FORMAT", f"columns given twice: {', '.join(twice)}")
