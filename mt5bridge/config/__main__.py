"""``python -m mt5bridge.config``: write or check docs/config.md."""

import sys

from mt5bridge.config.docs import main

sys.exit(main())
