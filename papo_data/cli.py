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

# Verbs of the contract that later issues build; each says what it will do.
PLANNED = {
    "report": "figures and tables of a dataset's planning actions and estimates",
    "publish": "publish a dataset to the Hugging Face Hub",
    "import-lerobot": "import a LeRobot v3 dataset and add the papo sidecar",
}


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
    for module in (collect, validate, sql, segment, branch, estimate, export_weights, train, demo):
        module.add_parser(verbs)
    for verb, what in PLANNED.items():
        p = verbs.add_parser(verb, help=f"{what} (not built yet)", description=f"{what}.")
        p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(handler=_not_built(verb))
    return parser


def _not_built(verb: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        raise BadInput(f"'{verb}' is not built yet in this version of papo_data")

    return handler


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
    except Exception:
        traceback.print_exc()
        print(
            f"{prog}: internal error (a bug: please report it with the traceback)", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
