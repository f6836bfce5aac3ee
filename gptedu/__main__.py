"""``python -m gptedu``: the command line (see ``gptedu.cli``)."""

import sys

try:
    from gptedu.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python was still loading the command line
    print("\ngptedu: interrupted before it started; nothing was written.", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main())
