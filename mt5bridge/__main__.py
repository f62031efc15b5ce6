import sys

from mt5bridge.cli.entry import main

sys.exit(main())
