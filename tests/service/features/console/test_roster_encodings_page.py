"""The console's roster import as staff use it with Chinese Excel: a GBK file with a Chinese header is imported and
the report names the encoding it was read in; a file in no known encoding is refused in Chinese, naming the line."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi.testclient import TestClient

from service.certification.context import ServiceContext
from tests.service.features.console.conftest import login
from tests.service.features.console.test_roster_pages import import_file
from tests.service.test_roster import card_rows
from tests.service.test_roster_encodings import CHINESE_HEADER, text_of


def test_a_gbk_roster_with_a_chinese_header_is_imported_and_its_encoding_shown(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], data_dir: Path
) -> None:
    rows = card_rows(data_dir, 2)
    csrf = login(app_client, "sup1")
    page = import_file(app_client, csrf, "名册.csv", text_of(rows, CHINESE_HEADER).encode("gbk"))
    assert 'id="created">2<' in page and 'id="encoding">GB18030<' in page
    bad = text_of(rows).encode("gbk") + b"P9,\xff\xff,x,,enterprise_pension,,\r\n"
    page = html.unescape(import_file(app_client, csrf, "名册.csv", bad))
    assert "导入失败：" in page and "第 4 行" in page and "另存为" in page
    assert "neither" not in page
    # The same bytes after UTF-8 text: a damaged character of a UTF-8 file, said so in Chinese.
    bad = text_of(rows).encode() + b"P9,\xff\xff,x,,enterprise_pension,,\r\n"
    page = html.unescape(import_file(app_client, csrf, "名册.csv", bad))
    assert "导入失败：" in page and "第 4 行" in page and "损坏" in page and "damaged" not in page
