import sys

from mt5bridge.cli import main

sys.exit(main())
