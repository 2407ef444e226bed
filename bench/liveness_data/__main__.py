"""``python -m bench.liveness_data fetch|build-manifest ...``: see ``bench.liveness_data.cli``."""

from bench.liveness_data.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
