"""The ``fastssl`` command line (also ``python -m fastssl``)."""

from __future__ import annotations

import argparse
import json
import sys


def _info(args) -> int:
    from . import info

    report = info.collect()
    print(json.dumps(report, indent=2, default=str) if args.json else info.render(report))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastssl", description="fastssl: fast data and augmentation engine for SSL")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="versions, native build, available backends per device, GPU")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=_info)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
