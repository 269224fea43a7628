import sys

from inrcodec.cli import main

sys.exit(main())
