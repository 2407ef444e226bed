"""Manifest building (maintainers; needs the snapshots): one row builder per source repository."""

from __future__ import annotations

import logging
import re
import subprocess
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.liveness_data.manifest import MANIFEST, Presentation, write_manifest
from bench.liveness_data.snapshots import GitSnapshot, combined_sha256, sha256_hex, snapshot_dir

log = logging.getLogger("bench.liveness_data")

REPLAY_ATTACK = "sejong-sas/replay-attack"
NUAA = "imironica/liveness"
GRID = "rizkiarm/LipNet"
NUAA_CHUNK = 45  # NUAA frame groups are cut into chunks of about this many frames


def _ls_tree(git_dir: Path, commit: str, prefix: str) -> list[str]:
    res = subprocess.run(
        ["git", f"--git-dir={git_dir}", "ls-tree", "-r", "--name-only", commit, prefix],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in res.stdout.splitlines() if line]


def _head(git_dir: Path) -> str:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _pin(snap: GitSnapshot, commit: str, paths: Sequence[str]) -> str:
    return combined_sha256({p: sha256_hex(snap.read(commit, p)) for p in paths})


_RA_DIR = re.compile(
    r"(?P<split>train|devel|test)__(?P<label>real|attack)__(?P<support>real|fixed|hand)__"
    r"(?:attack_(?P<device>print|mobile|highdef)_)?(?P<client>client\d{3})_session\d+_"
    r"(?:webcam_authenticate|(?P<shown>highdef|mobile)_(?P<medium>photo|video))_(?P<light>controlled|adverse)"
)
RA_ATTACK = {"print": "print", "mobile": "replay_phone", "highdef": "replay_tablet"}
RA_SHOWN = {
    "print": "printed high-resolution photo",
    "mobile": "shown on an iPhone 3GS screen",
    "highdef": "shown on an iPad screen",
}


def replay_attack_rows(snap: GitSnapshot, commit: str) -> list[Presentation]:
    frames: dict[str, list[str]] = defaultdict(list)
    for path in _ls_tree(snap.git_dir, commit, "frames/replay_attack"):
        d, name = path.rsplit("/", 1)
        if name.endswith(".jpg"):
            frames[d].append(name)
    rows: list[Presentation] = []
    for d in sorted(frames):
        vid = d.rsplit("/", 1)[1]
        m = _RA_DIR.match(vid)
        if m is None:
            raise ValueError(f"unexpected Replay-Attack folder name {vid}")
        idx = sorted(int(n[len("frame_") : -4]) for n in frames[d])
        real = m["label"] == "real"
        device = m["device"] or ""
        medium = "live" if real else ("print" if device == "print" else m["medium"])
        attack = "none" if real else RA_ATTACK[device]
        tokens = [f"{i:05d}" for i in idx]
        paths = [f"{d}/frame_{t}.jpg" for t in tokens]
        span = (idx[-1] + 1) / 25.0
        rows.append(
            Presentation(
                id=vid,
                source="replay_attack",
                repo=REPLAY_ATTACK,
                commit=commit,
                label="real" if real else "spoof",
                attack_type=attack,
                medium=medium,
                support="none" if real else m["support"],
                light=m["light"],
                subject=f"replay_attack:{m['client']}",
                split=m["split"],
                dir=d,
                pattern="frame_{}.jpg",
                frames=" ".join(tokens),
                sha256=_pin(snap, commit, paths),
                note=f"original ~{span:.1f} s at 25 fps" + ("" if real else f"; {RA_SHOWN[device]}"),
            )
        )
    return rows


_NUAA_NAME = re.compile(r"(?P<sid>\d{4})_(?P<glasses>\d{2})_(?P<pos>\d{2})_(?P<session>\d{2})_(?P<pic>\d+)\.jpg")
NUAA_POS = {
    "00": "",
    "01": "up-down rotate",
    "02": "up-down twist",
    "03": "left-right rotate",
    "04": "left-right twist",
    "05": "window closed, lights on",
    "06": "pos 06 (undocumented)",
    "07": "window open, lights on",
    "08": "window open, lights off / still",
}


def _nuaa_split(snap: GitSnapshot, commit: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for kind, folder in (("client", "ClientRaw"), ("imposter", "ImposterRaw")):
        for split in ("train", "test"):
            text = snap.read(commit, f"db/{kind}_{split}_raw.txt").decode("utf-8", "replace")
            for line in text.split():
                out[f"db/{folder}/{line.strip().replace(chr(92), '/')}"] = split
    return out


def nuaa_rows(snap: GitSnapshot, commit: str) -> list[Presentation]:
    split_of = _nuaa_split(snap, commit)
    groups: dict[tuple[str, str, str, str, str], list[int]] = defaultdict(list)
    for folder, label in (("ClientRaw", "real"), ("ImposterRaw", "spoof")):
        for path in _ls_tree(snap.git_dir, commit, f"db/{folder}"):
            m = _NUAA_NAME.fullmatch(path.rsplit("/", 1)[1])
            if m is None:
                continue  # Thumbs.db
            groups[(label, m["sid"], m["glasses"], m["pos"], m["session"])].append(int(m["pic"]))
    rows: list[Presentation] = []
    for (label, sid, glasses, pos, session), pics in sorted(groups.items()):
        pics.sort()
        k = max(1, round(len(pics) / NUAA_CHUNK))
        bounds = np.linspace(0, len(pics), k + 1).round().astype(int)
        folder = "ClientRaw" if label == "real" else "ImposterRaw"
        d = f"db/{folder}/{sid}"
        pattern = f"{sid}_{glasses}_{pos}_{session}_{{}}.jpg"
        for c in range(k):
            chunk = pics[bounds[c] : bounds[c + 1]]
            paths = [f"{d}/{pattern.format(n)}" for n in chunk]
            splits = {split_of.get(p, "none") for p in paths}
            split = splits.pop() if len(splits) == 1 else "mixed"
            tag = "real" if label == "real" else "print"
            desc = NUAA_POS.get(pos, f"pos {pos}")
            rows.append(
                Presentation(
                    id=f"{tag}_{sid}_g{glasses}_p{pos}_s{session}_c{c + 1:02d}",
                    source="nuaa",
                    repo=NUAA,
                    commit=commit,
                    label=label,
                    attack_type="none" if label == "real" else "print",
                    medium="live" if label == "real" else "print",
                    support="none" if label == "real" else "hand",
                    light="unknown",
                    subject=f"nuaa:{sid}",
                    split=split,
                    dir=d,
                    pattern=pattern,
                    frames=" ".join(str(n) for n in chunk),
                    sha256=_pin(snap, commit, paths),
                    note="; ".join(
                        x
                        for x in (
                            f"glasses={'yes' if glasses == '00' else 'no'}",
                            desc,
                            f"picNo {chunk[0]}-{chunk[-1]}",
                        )
                        if x
                    ),
                )
            )
    return rows


# GRID file names encode the sentence, not the speaker; speakers were told apart on sight (first frames):
# every clip shows a different person except pwij3p and id2_vcd_swwp2s (the same man). Not source labels.
GRID_CLIPS = {
    "bbaf2n": "v01",
    "brbk7n": "v02",
    "lbax4n": "v03",
    "lbbc2a": "v04",
    "lrwp9a": "v05",
    "lwbsza": "v06",
    "pwij3p": "v07",
    "sbia1a": "v08",
    "sbwe5n": "v09",
    "swiz3n": "v10",
    "id2_vcd_swwp2s": "v07",
}


def _live_clip(**fields: str) -> Presentation:
    """A genuine person's clip (no attack, nothing held, no official split): what GRID and the older speakers share."""
    return Presentation(label="real", attack_type="none", medium="live", support="none", split="none", **fields)


def grid_rows(snap: GitSnapshot, commit: str) -> list[Presentation]:
    rows: list[Presentation] = []
    for path in _ls_tree(snap.git_dir, commit, "evaluation/samples"):
        if not path.endswith(".mpg"):
            continue
        d, name = path.rsplit("/", 1)
        stem = name[:-4]
        rows.append(
            _live_clip(
                id=stem,
                source="grid",
                repo=GRID,
                commit=commit,
                light="controlled",
                subject=f"grid:{GRID_CLIPS.get(stem, 'unknown')}",
                dir=d,
                pattern="{}.mpg",
                frames=stem,
                sha256=_pin(snap, commit, [path]),
                note="speaker told apart on sight, not a GRID speaker number",
            )
        )
    return rows


# Older people talking to a camera (the only ones found with their video in a repository): they blink, speak
# and drift, but perform no requested action. Each is pinned at the commit that holds it (the MimicTalk clip is
# gone from that repository's head). (repo, commit, path, id, subject, note)
ELDERLY_CLIPS = (
    (
        "OpenTalker/video-retalking",
        "6f584bd6e761fc20331c886b6afc8180fd9ee547",
        "examples/face/5.mp4",
        "video_retalking_face5",
        "elderly_talk:woman_60s",
        "woman, about 60, glasses, talking in front of an office window; repo Apache-2.0, the clip has no note",
    ),
    (
        "yerfor/MimicTalk",
        "44bde25e93ec89d31b6517fe94e7a356d8694fa8",
        "data/raw/examples/Trump_10s.mp4",
        "mimictalk_trump_10s",
        "elderly_talk:man_70s",
        "man, about 72, address from the Oval Office (US federal work); repo MIT",
    ),
)


def elderly_rows(mirror_root: Path) -> list[Presentation]:
    rows: list[Presentation] = []
    for repo, commit, path, clip_id, subject, note in ELDERLY_CLIPS:
        with GitSnapshot(snapshot_dir(mirror_root, repo)) as snap:
            d, name = path.rsplit("/", 1)
            rows.append(
                _live_clip(
                    id=clip_id,
                    source="elderly_talk",
                    repo=repo,
                    commit=commit,
                    light="unknown",
                    subject=subject,
                    dir=d,
                    pattern="{}",
                    frames=name,
                    sha256=_pin(snap, commit, [path]),
                    note=note,
                )
            )
    return rows


def build_manifest(mirror_root: Path, out: Path = MANIFEST) -> list[Presentation]:
    rows: list[Presentation] = []
    for repo, builder in ((REPLAY_ATTACK, replay_attack_rows), (NUAA, nuaa_rows), (GRID, grid_rows)):
        with GitSnapshot(snapshot_dir(mirror_root, repo)) as snap:
            commit = _head(snap.git_dir)
            got = builder(snap, commit)
            log.info("%s@%s: %d presentations", repo, commit[:12], len(got))
            rows.extend(got)
    rows.extend(elderly_rows(mirror_root))
    write_manifest(out, rows)
    return rows
