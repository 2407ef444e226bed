"""Larger liveness development set: pinned public frames/clips assembled into MP4 presentations in a cache.

    python -m bench.liveness_data fetch [--mirror-root /work/.mirror] [--cache DIR] [--limit-per-source N]
    python -m bench.liveness_data build-manifest [--mirror-root /work/.mirror]   # maintainers only

Sources are git repository snapshots (bare git directories ``<mirror-root>/<owner>+<name>/repo``); every file
read from them is pinned in ``bench/liveness_data/manifest.csv`` by repository, commit, path and sha256. To keep
the manifest small, one row stands for one *presentation* (one video made from N source files): the files are
``dir/pattern.format(token)`` for each token of ``frames``, and ``sha256`` is the sha256 of the sorted lines
``"<path> <sha256 of the file>\\n"`` (see :func:`combined_sha256`). A mismatch refuses the presentation.

The cache (``$PENSION_CERT_LIVENESS_DIR`` or ``~/.cache/pension-cert/liveness``) receives one H.264 MP4 per
presentation and ``presentations.csv`` (paths relative to the cache). See ``docs/liveness_data.md``.
No media are committed; upstream terms (e.g. the Idiap EULA of Replay-Attack) allow measuring only.

The package: ``manifest`` (rows, parsing, the never-take guard, subset selection), ``snapshots`` (verified reads from
git snapshots), ``assembly`` (the MP4 of one presentation), ``cache`` (``fetch``: state file and index),
``sources`` (maintainers' manifest builders per source repository), ``cli``.
"""

from bench.liveness_data.assembly import (
    ASSEMBLY_VERSION,
    CRF,
    NUAA_FPS,
    NUAA_HOLD,
    PRESET,
    RA_FPS,
    RA_HOLD,
    UPSCALE_BELOW,
    assemble,
    decode_image,
    decode_video,
    encode_mp4,
)
from bench.liveness_data.cache import (
    INDEX_COLUMNS,
    INDEX_NAME,
    STATE_COLUMNS,
    STATE_NAME,
    default_cache,
    fetch,
    write_index,
)
from bench.liveness_data.cli import main
from bench.liveness_data.manifest import (
    FORBIDDEN_NAMES,
    FORBIDDEN_REPOS,
    MANIFEST,
    MANIFEST_COLUMNS,
    Presentation,
    check_allowed,
    read_manifest,
    select,
    summarize,
    write_manifest,
)
from bench.liveness_data.snapshots import (
    GitSnapshot,
    IntegrityError,
    combined_sha256,
    copy_verified,
    read_verified,
    sha256_hex,
    snapshot_dir,
)
from bench.liveness_data.sources import (
    GRID,
    GRID_CLIPS,
    NUAA,
    NUAA_CHUNK,
    NUAA_POS,
    RA_ATTACK,
    RA_SHOWN,
    REPLAY_ATTACK,
    build_manifest,
    grid_rows,
    nuaa_rows,
    replay_attack_rows,
)

__all__ = [
    "ASSEMBLY_VERSION",
    "CRF",
    "FORBIDDEN_NAMES",
    "FORBIDDEN_REPOS",
    "GRID",
    "GRID_CLIPS",
    "INDEX_COLUMNS",
    "INDEX_NAME",
    "MANIFEST",
    "MANIFEST_COLUMNS",
    "NUAA",
    "NUAA_CHUNK",
    "NUAA_FPS",
    "NUAA_HOLD",
    "NUAA_POS",
    "PRESET",
    "RA_ATTACK",
    "RA_FPS",
    "RA_HOLD",
    "RA_SHOWN",
    "REPLAY_ATTACK",
    "STATE_COLUMNS",
    "STATE_NAME",
    "UPSCALE_BELOW",
    "GitSnapshot",
    "IntegrityError",
    "Presentation",
    "assemble",
    "build_manifest",
    "check_allowed",
    "combined_sha256",
    "copy_verified",
    "decode_image",
    "decode_video",
    "default_cache",
    "encode_mp4",
    "fetch",
    "grid_rows",
    "main",
    "nuaa_rows",
    "read_manifest",
    "read_verified",
    "replay_attack_rows",
    "select",
    "sha256_hex",
    "snapshot_dir",
    "summarize",
    "write_index",
    "write_manifest",
]
