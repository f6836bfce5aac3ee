"""``python -m gptedu``: the command line (see ``gptedu.cli``)."""

import sys

from gptedu.cli import main

if __name__ == "__main__":
    sys.exit(main())
