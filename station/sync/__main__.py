import sys

from station.sync.cli import main

sys.exit(main())
