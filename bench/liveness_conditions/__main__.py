"""``python -m bench.liveness_conditions generate|demo ...``: see ``bench.liveness_conditions.cli``."""

import sys

from bench.liveness_conditions.cli import main
from bench.liveness_conditions.faces import REPO

if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
