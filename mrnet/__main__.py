import sys

from mrnet.cli import main

sys.exit(main())
