import sys

from service.adapters.cli import main

sys.exit(main())
