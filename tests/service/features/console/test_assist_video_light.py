"""A manual review (人工审核) requested for a video the machine rejected because the face did not follow the screen's
colours (LIGHT_NOT_SEEN, LIGHT_CHALLENGE enforce). Staff may not overrule it by watching the video
(pipelines.reasons.staff_may_overrule): a video made before the session, a relative's replay of a deceased
pensioner, shows exactly that, and watching cannot tell it from a dim screen. Before, the request page's refusal
named only 未完成动作或拍摄条件 as overrulable, which LIGHT_NOT_SEEN's own advice (调亮屏幕、脸靠近屏幕) reads like;
now it names the screen's colours among what must be verified in person, and sends staff to a visit or the counter."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from pipelines.reasons import staff_may_overrule
from service.certification.context import ServiceContext
from tests.service.features.console.conftest import login
from tests.service.features.console.test_assist_video_review import _accept, _nothing_done, _rejected


def test_a_video_rejected_for_the_screen_light_is_refused_with_the_way_on(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int]
) -> None:
    assert not staff_may_overrule("LIGHT_NOT_SEEN", number_matched=True)
    bid, sid, rid = _rejected(ctx, ["LIGHT_NOT_SEEN"])
    csrf = login(app_client, "sup1")
    html = app_client.get(f"/console/requests/{rid}").text
    page = re.sub(r"<[^>]+>", "", html)
    assert 'id="video-form"' not in html and "未见屏幕光照在脸上" in page
    assert "脸上未见屏幕颜色（可能是事先录好的视频）" in page and "请安排上门或柜台认证" in page
    answer = _accept(app_client, csrf, rid, sid)
    assert answer.startswith("409") and "脸上未见屏幕颜色" in answer
    _nothing_done(ctx, bid, sid, rid)
