"""The `archcalc` command. Exit status: 0 ok, 1 spec error, 2 usage error.

Each subcommand lives in a module of `archcalc.commands` with `add_parser(subparsers)` and
`main(args) -> int`; this module only dispatches and turns SpecError into a message."""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import SpecError

COMMANDS = ("analyze", "formula", "compare", "sweep", "report", "run", "augment", "finetune",
            "import_", "export", "calibrate")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2, as argparse does, without a traceback
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="archcalc", description="Check the arithmetic of convolutional networks.")
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"archcalc.commands.{name}").add_parser(sub)
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.main(args)
    except SpecError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except OSError as e:  # an output path that cannot be written: a message, not a traceback
        where = f" '{e.filename}'" if e.filename else ""
        print(f"error: cannot write or read{where}: {e.strerror or e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
