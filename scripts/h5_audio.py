"""Generate the H5 pages' spoken prompts (service/features/wechat/h5/voice.py PROMPTS) with espeak-ng into
var_dir/h5-audio.

The service also generates a missing prompt on its first request; run this at deployment (or after changing
a prompt) so no citizen waits for it. A bureau's own recordings go in the folder of the setting h5_audio_dir
(PENSION_CERT_H5_AUDIO_DIR) as {key}.mp3 or {key}.wav and win over the generated files; `--list` prints the
keys and texts to record.

    python scripts/h5_audio.py [--list]
"""

from __future__ import annotations

import argparse
import logging
import sys

from service.features.wechat.h5 import voice
from service.infra.config import Settings

log = logging.getLogger("h5_audio")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print key<TAB>text of every prompt and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.list:
        for key, text in voice.PROMPTS.items():
            sys.stdout.write(f"{key}\t{text}\n")
        return 0
    settings = Settings()
    missing = []
    for key in voice.PROMPTS:
        own = voice.bureau_file(settings, key)
        path = own or voice.generate(settings, key)
        if path is None:
            missing.append(key)
        else:
            log.info("%-20s %s%s", key, path, " (bureau recording)" if own else "")
    if missing:
        log.error("no audio for %s: install espeak-ng (scripts/setup.sh)", ", ".join(missing))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
