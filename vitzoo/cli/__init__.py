"""The ``vitzoo`` command: parsing and printing only; every command calls the library.

Each command is a module of this package with ``add_parser(subparsers)`` and ``run(args) -> int``, registered in
``COMMANDS``; the options several commands share are defined once in ``options``. A command module imports the
library inside ``run``, so ``vitzoo --help`` and ``vitzoo COMMAND --help`` answer without importing torch.
``main`` turns every failure into one line on stderr and an exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .._version import __version__
from ..errors import VitzooError
from . import analyze, download, embed, export, fewshot, finetune, info, predict, probe, search, zeroshot
from . import list as list_  # (importing vitzoo.cli.list also binds `list` here: builtins.list is shadowed)
from .options import HelpFormatter

# in --help's order
COMMANDS = (list_, download, info, predict, zeroshot, embed, search, analyze, fewshot, probe, export, finetune)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitzoo",
        description="Vision Transformers (Dosovitskiy et al., ICLR 2021) for PyTorch: list models and checkpoints, "
        "download weights, classify and embed images. Results go to stdout, progress and errors to stderr.",
        epilog="vitzoo COMMAND --help shows a command's arguments and options.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vitzoo {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(subparsers)
    return parser


_OS_HINTS = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some space or write elsewhere",
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "choose a path on a writable file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a file is in the way of a folder that path needs",
}


def os_error_message(err: OSError) -> str:
    """One line for a file-system error: the path, what the system said and, for the common causes, what to do."""
    what = err.strerror or str(err)
    where = f"{err.filename}: " if err.filename else ""
    hint = _OS_HINTS.get(err.errno or 0)
    return f"{where}{what}" + (f"; {hint}" if hint else "")


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args``, where a command that takes a list of inputs after its name (``embed``: ``inputs``,
    ``nargs="*"``, named by its ``trailing_inputs`` default) gets them wherever they come:
    ``vitzoo embed NAME --out OUT a.jpg b.jpg`` as ``vitzoo embed NAME a.jpg b.jpg --out OUT``. argparse before Python
    3.13 gives a ``nargs="*"`` positional an empty list at ``NAME`` and calls what follows the options unrecognized;
    those, none an option (or anything after ``--``), are appended to the inputs here."""
    args, extras = parser.parse_known_args(argv)
    if not extras:
        return args
    dest = getattr(args, "trailing_inputs", None)
    cut = extras.index("--") if "--" in extras else len(extras)
    before, after = extras[:cut], extras[cut + 1 :]
    if dest is None or any(item.startswith("-") for item in before):
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    setattr(args, dest, [*getattr(args, dest), *before, *after])
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        if getattr(args, "device", None) is not None:
            from ..features.batches import resolve_device

            resolve_device(args.device)  # a device this machine lacks, before any work
        status: int = args.func(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not in the interpreter's flush at exit
        return status
    except VitzooError as err:
        print(f"vitzoo: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader left (`vitzoo list | head -1`): stop quietly with SIGPIPE's status, as Unix tools do. stdout goes
        # to devnull first, or the interpreter's final flush of the buffered rest raises again on the way out.
        with contextlib.suppress(OSError, ValueError):  # stdout replaced in-process: no file descriptor to redirect
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # 141, the status of a writer killed by SIGPIPE (13; Windows has no signal.SIGPIPE)
    except OSError as err:  # the file system: a folder that cannot be written, a full disk, a vanished file
        print(f"vitzoo: error: {os_error_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = ""
        if args.command == "embed":
            parts = args.out if not Path(args.out).suffix else f"{args.out}.parts/"
            hint = f"; finished shards are kept in {parts} and re-running the same command resumes"
        print(f"vitzoo: interrupted{hint}", file=sys.stderr)
        return 130  # 128 + SIGINT, what a shell reports for Ctrl-C
