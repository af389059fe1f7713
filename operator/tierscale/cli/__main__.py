import sys

from tierscale.cli import main

sys.exit(main())
