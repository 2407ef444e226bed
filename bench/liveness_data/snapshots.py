"""Verified reads from repository snapshots (bare git directories): sha256 pins and ``git cat-file --batch``."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from bench.liveness_data.manifest import Presentation, check_allowed


class IntegrityError(RuntimeError):
    """A source file is missing from the snapshot or its content does not match the pinned sha256."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def combined_sha256(file_hashes: dict[str, str]) -> str:
    """sha256 over the sorted lines ``"<path> <sha256>\\n"``: one pin for all files of a presentation."""
    text = "".join(f"{p} {h}\n" for p, h in sorted(file_hashes.items()))
    return sha256_hex(text.encode("utf-8"))


def snapshot_dir(mirror_root: Path, repo: str) -> Path:
    """Bare git directory of a snapshot brought by ``fetch github:owner/name``."""
    return mirror_root / repo.replace("/", "+") / "repo"


class GitSnapshot:
    """Reads blobs ``commit:path`` from a bare git directory through one ``git cat-file --batch`` process."""

    def __init__(self, git_dir: Path) -> None:
        if not git_dir.is_dir():
            raise IntegrityError(f"snapshot {git_dir} does not exist: bring it with `fetch github:OWNER/NAME` first")
        self.git_dir = git_dir
        self._proc = subprocess.Popen(
            ["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def has_commit(self, commit: str) -> bool:
        res = subprocess.run(
            ["git", f"--git-dir={self.git_dir}", "cat-file", "-t", commit], capture_output=True, text=True, check=False
        )
        return res.returncode == 0 and res.stdout.strip() == "commit"

    def read(self, commit: str, path: str) -> bytes:
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(f"{commit}:{path}\n".encode())
        stdin.flush()
        header = stdout.readline().decode().split()
        if len(header) != 3 or header[1] != "blob":
            raise IntegrityError(f"{path} is not a file at commit {commit[:12]} of {self.git_dir}")
        size = int(header[2])
        data = stdout.read(size)
        stdout.read(1)  # trailing newline
        return data

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)

    def __enter__(self) -> GitSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_verified(snap: GitSnapshot, p: Presentation) -> dict[str, bytes]:
    """All source files of ``p`` from the snapshot, in manifest order; raises IntegrityError unless they match."""
    check_allowed(p.repo, p.files())
    data = {path: snap.read(p.commit, path) for path in p.files()}
    got = combined_sha256({path: sha256_hex(b) for path, b in data.items()})
    if got != p.sha256:
        raise IntegrityError(
            f"sha256 mismatch for presentation {p.id} ({len(data)} files of {p.repo}@{p.commit[:12]}): "
            f"combined sha256 is {got}, the manifest pins {p.sha256}; refusing to use it"
        )
    return data


def copy_verified(snap: GitSnapshot, p: Presentation, dest: Path) -> list[Path]:
    """Copy the source files of ``p`` under ``dest`` (keeping their repository paths) after verifying them."""
    data = read_verified(snap, p)
    out: list[Path] = []
    for path, blob in data.items():
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
        out.append(target)
    return out
