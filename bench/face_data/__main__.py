"""``python -m bench.face_data fetch|build-manifest ...``: see ``bench.face_data.cli``."""

from bench.face_data.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
