"""``python -m fastssl``: the ``fastssl`` command line (see :mod:`fastssl.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":  # importing the module (e.g. to collect its doctests) runs nothing
    sys.exit(main())
