"""The `papo` command: one sub-command per verb of DESIGN §5.

Exit codes: 0 ok, 2 bad input (one line on stderr naming the file, row or field), 1 internal
error (a traceback, because that is a bug to report).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from papo_data.errors import BadInput

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, exit 2, like every other bad input.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from papo_data.commands import (
        branch,
        collect,
        demo,
        estimate,
        export_weights,
        import_lerobot,
        publish,
        report,
        segment,
        sql,
        train,
        validate,
    )

    parser = _Parser(
        prog="papo",
        description="Planning-aware policy optimisation data toolkit: rollouts as a LeRobot v3 "
        "dataset with a papo/ sidecar, queried with DuckDB.",
        epilog="Exit codes: 0 ok, 2 bad input (one line naming the file, row or field), "
        "1 internal error. Run 'papo VERB --help' for each verb.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    pipeline = (collect, validate, sql, segment, branch, estimate, export_weights, train)
    interop = (report, publish, import_lerobot, demo)
    for module in (*pipeline, *interop):
        module.add_parser(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    prog = f"papo {args.verb}"
    try:
        return int(args.handler(args))
    except BadInput as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:  # a path the user gave that cannot be read or written, not a bug
        where = f"{e.filename}: " if e.filename else ""
        print(f"{prog}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        print(
            f"{prog}: internal error (a bug: please report it with the traceback)", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
