"""A case whose job failed (the worker gave up, no pipeline result): the case page shows frames cut from the stored
video and says in Chinese that the machine could not analyse it, and an accept takes two people on the person's own
session too (docs/security.md, the console review's Part). A real job failed by the worker after its attempts."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fuzz import bombs
from service.certification.context import ServiceContext
from service.certification.models import Certification, CertSession, Channel, SessionState
from service.certification.proxy_face import face_checked
from service.features.console.labels import FAILURE_OTHER_ZH, failure_zh
from tests.service import factories
from tests.service.features.console.conftest import Sample, api_settle, failed_case, login, new_client


def _certifications(ctx: ServiceContext, bid: int) -> int:
    with ctx.db() as db:
        return int(db.scalar(select(func.count(Certification.id)).where(Certification.beneficiary_id == bid)) or 0)


def test_a_failed_case_shows_frames_cut_from_the_video_and_says_the_machine_could_not_analyse_it(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], sample: Sample
) -> None:
    """The page drew video pictures only from the pipeline's best frames: a failed job showed none, and its only
    explanation was the worker's English exception."""
    sid, _bid = failed_case(ctx, sample, Channel.SELF)
    login(app_client, "rev1")
    page = app_client.get(f"/console/cases/{sid}").text
    assert page.count('class="frame"') == 3
    assert "机器未能分析该视频：以下为均匀截取的画面，没有活体检测和人脸比对结果" in page
    assert "系统分析该视频时出错，多次重试仍未成功" in page  # the Chinese sentence; the technical text stays small
    assert '<span class="small">（技术信息：ValueError: operands' in page
    for i in range(3):  # each cut from the stored video, decoded for real
        r = app_client.get(f"/console/cases/{sid}/img/frame/{i}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    assert app_client.get(f"/console/cases/{sid}/img/frame/3").status_code == 404


def test_a_failed_job_of_the_persons_own_session_takes_two_to_accept(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], sample: Sample
) -> None:
    """One reviewer's 通过 certified a year of pension on the card photo alone: no liveness, no face match."""
    sid, bid = failed_case(ctx, sample, Channel.SELF)
    _two_accept_it(app_client, ctx, sid, bid, first_leaves=SessionState.FAILED)


def test_a_failure_reads_as_a_chinese_sentence() -> None:
    """Each fixed text the workers write has its own sentence; an exception's text the general one."""
    assert "处理程序都中断" in failure_zh("worker lost on every attempt")
    assert "分析线程意外终止" in failure_zh("worker thread w-1 (host:1:ab) died")
    assert "超出时间上限" in failure_zh("JobTimeLimitExceededError: the job ran past its hard time limit (60 s)")
    assert failure_zh("ValueError: operands could not be broadcast") == FAILURE_OTHER_ZH


def test_a_decided_self_case_without_a_face_score_takes_two_to_accept(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int]
) -> None:
    """A review case of the person's own session whose decision recorded no face score (a row stored before every
    decision recorded one): no machine face match either, as a failed job, yet one reviewer's 通过 certified it."""
    sid, bid = case
    stored = factories.update(ctx, CertSession, sid).result or {}
    assert face_checked(stored)  # the real pipeline's case: one reviewer's, as the guard below says
    scores = {k: v for k, v in stored["scores"].items() if k not in ("card_similarity", "template_similarity")}
    factories.update(ctx, CertSession, sid, result={**stored, "scores": scores})
    _two_accept_it(app_client, ctx, sid, bid)


def test_a_decided_self_case_with_its_face_score_is_one_reviewers(
    app_client: TestClient, ctx: ServiceContext, case: tuple[str, int]
) -> None:
    """Guard: the same case as the pipeline stored it (a face score, no doubt of another person) is settled by one."""
    sid, bid = case
    csrf = login(app_client, "rev1")
    assert app_client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf}).status_code in (200, 303)
    r = app_client.post(f"/console/cases/{sid}/decide", data={"csrf": csrf, "decision": "accept", "reason": "证件一致"})
    assert "等待主管复核" not in r.text and _certifications(ctx, bid) == 1


def _two_accept_it(
    app_client: TestClient, ctx: ServiceContext, sid: str, bid: int, first_leaves: str | None = None
) -> None:
    """The four-eyes walk of a case without a machine face match: the page says why, a reviewer's 通过 waits for a
    supervisor and certifies nobody, the operator API is refused (CASE_HELD), a supervisor other than the first
    decider settles it (the rule asks for two, it does not forbid)."""
    csrf = login(app_client, "rev1")
    page = app_client.get(f"/console/cases/{sid}").text
    assert 'id="four-eyes"' in page and "本人认证未经机器人脸比对" in page[page.index('id="four-eyes"') :]
    assert app_client.post(f"/console/cases/{sid}/claim", data={"csrf": csrf}).status_code in (200, 303)
    r = app_client.post(f"/console/cases/{sid}/decide", data={"csrf": csrf, "decision": "accept", "reason": "证件一致"})
    assert "等待主管复核" in r.text and _certifications(ctx, bid) == 0
    if first_leaves is not None:  # the session's state is the machine's until the second decision
        assert factories.update(ctx, CertSession, sid).state == first_leaves
    assert api_settle(app_client, sid, "accept") == (409, "CASE_HELD")
    sup = new_client(app_client)
    sup_csrf = login(sup, "sup1")
    assert sup.post(f"/console/cases/{sid}/claim", data={"csrf": sup_csrf}).status_code in (200, 303)
    sup.post(f"/console/cases/{sid}/decide", data={"csrf": sup_csrf, "decision": "accept", "reason": "看过画面"})
    assert _certifications(ctx, bid) == 1


def test_a_failed_cases_pictures_of_hostile_media_cost_no_more_than_the_workers_refusal(
    app_client: TestClient, ctx: ServiceContext, staff_users: dict[str, int], sample: Sample
) -> None:
    """A failed job is where a frame bomb ends up (2,000 flat 4K frames in 2 s, the worker refuses it after about a
    hundred): the case pictures decoded the stored video from its first frame without limits, and the card with
    OpenCV, whatever its scans (review: media 4; 144 CPU-s of the API for one view of the review's 20,000-frame
    clip). Now cut by the pipeline's intake: each picture a placeholder (404) or a JPEG, the whole view in a couple
    of CPU-s."""
    sid, _bid = failed_case(ctx, sample, Channel.SELF)
    stored = factories.update(ctx, CertSession, sid)
    assert stored.video_key is not None and stored.id_card_key is not None
    ctx.storage.put(stored.video_key, bombs.frame_bomb(3840, 2160, 2000, 1000))
    ctx.storage.put(stored.id_card_key, bombs.jpeg_scan_bomb(4000, 4000, 10_000))
    login(app_client, "rev1")
    started = time.process_time()
    answers = [app_client.get(f"/console/cases/{sid}/img/frame/{i}").status_code for i in range(3)]
    answers.append(app_client.get(f"/console/cases/{sid}/img/card/0").status_code)
    assert time.process_time() - started < 3
    assert set(answers) <= {200, 404} and answers[3] == 404
