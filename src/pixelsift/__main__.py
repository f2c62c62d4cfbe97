import sys

from pixelsift.cli import main

sys.exit(main())
