"""``python -m fiji_bridge install | update-site | run-macro | assess-for-macro``."""

import sys

from fiji_bridge.cli import main

sys.exit(main())
