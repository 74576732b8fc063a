"""The options several commands share, each defined once, and what they mean to the library.

Nothing here imports torch: ``vitzoo COMMAND --help`` builds every parser. ``load_model`` imports the library when a
command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import choices

if TYPE_CHECKING:
    from ..models.vit import VisionTransformer


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, with ``(default: X)`` after each option that has a default (not None, not False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if not action.option_strings or default is None or default is False or default == argparse.SUPPRESS:
            return text
        if "(default" in text:  # said in its own words
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


def command(subparsers: Any, name: str, *, help: str, description: str) -> argparse.ArgumentParser:
    """A command's parser: ``help`` is its line in ``vitzoo --help``, ``description`` the top of its own help."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help, description=description, formatter_class=HelpFormatter
    )
    return parser


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


class _OneOrTwo(argparse.Action):
    """``nargs="+"`` that takes one or two values (N, or H W) and refuses more."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        if len(values) > 2:
            parser.error(f"argument {option}: expected N or H W, got {len(values)} numbers")
        setattr(namespace, self.dest, list(values))


# ------------------------------------------------------------------------------------------------ the model
def img_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--img-size",
        type=positive_int,
        nargs="+",
        action=_OneOrTwo,
        metavar="N",
        help="input size, N or H W; the position embeddings are resampled (default: the checkpoint's)",
    )


def revision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--revision", help="Hub branch, tag or commit to pin")


def random_weights(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--random-weights", action="store_true", help=argparse.SUPPRESS)  # tests: no download


def model(parser: argparse.ArgumentParser) -> None:
    """The options of every command that builds a model from a name: ``--img-size``, ``--revision``."""
    img_size(parser)
    revision(parser)
    random_weights(parser)


def size_of(values: Sequence[int] | None) -> int | tuple[int, int] | None:
    """``--img-size`` as the library takes it: N, (H, W), or None for the checkpoint's."""
    if not values:
        return None
    return values[0] if len(values) == 1 else (values[0], values[1])


def load_model(name: str, args: argparse.Namespace, **kw: Any) -> VisionTransformer:
    """``create_model`` with the model options of ``args``: pretrained unless ``--random-weights``."""
    from ..factory import create_model

    size = size_of(getattr(args, "img_size", None))
    if size is not None:
        kw["img_size"] = size
    pretrained = not getattr(args, "random_weights", False)
    return create_model(name, pretrained=pretrained, revision=getattr(args, "revision", None), **kw)


# ------------------------------------------------------------------------------------------------- the run
def batch_size(
    parser: argparse.ArgumentParser, default: int = 32, help: str = "images (or texts) per forward pass"
) -> None:
    parser.add_argument("--batch-size", type=int, default=default, help=help)


def workers(
    parser: argparse.ArgumentParser, default: int | None = None, help: str = "decoding processes (default: cores - 1)"
) -> None:
    parser.add_argument("--workers", type=int, default=default, help=help)


def dtype(parser: argparse.ArgumentParser, default: str | None = None, help: str = "model dtype") -> None:
    parser.add_argument("--dtype", choices=choices.DTYPES, default=default, help=help)


def device(parser: argparse.ArgumentParser, help: str = "cpu (default), cuda, cuda:1, ...") -> None:
    parser.add_argument("--device", help=help)


def exact_decode(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--exact-decode",
        action="store_true",
        help="decode every pixel of large JPEGs (timm's preprocessing bit for bit); by default JPEGs over twice the "
        "resize target are decoded at 1/2-1/8 scale first (libjpeg draft mode): several times faster on photos",
    )


def inference(parser: argparse.ArgumentParser) -> None:
    """How a command that runs a model over images runs: ``--batch-size``, ``--workers``, ``--dtype``, ``--device``,
    ``--exact-decode``."""
    batch_size(parser)
    workers(parser)
    dtype(parser)
    device(parser)
    exact_decode(parser)


def runtime(parser: argparse.ArgumentParser) -> None:
    """``--runtime`` and a ``--dtype`` that takes int8 too, for the commands whose forward may run elsewhere than
    eager PyTorch (embed, predict, probe); after ``inference``."""
    parser.add_argument(
        "--runtime",
        choices=choices.RUNTIMES,
        default="torch",
        help="where the forward runs: torch (eager, default), compile (torch.compile, weights frozen), onnxruntime "
        "(the exported graph, cached; the export extra), auto (the fastest of them that gives eager's features here, "
        "measured once and remembered)",
    )
    for action in parser._actions:
        if action.dest == "dtype":
            action.choices = choices.INFERENCE_DTYPES
            action.help = "model dtype; int8: onnxruntime's dynamic quantisation (--runtime onnxruntime or auto)"


def quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def json_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


# --------------------------------------------------------------------------------------------- the features
def pool(parser: argparse.ArgumentParser, names: Sequence[str], *, several: bool = False) -> None:
    """``--pool`` among ``names``; ``several``: one or more."""
    parser.add_argument(
        "--pool",
        nargs="+" if several else None,
        choices=names,
        help=("one or more pools" if several else "the pooling") + " (default: the model's own, config.global_pool)",
    )


def layers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layers", type=int, nargs="+", help="block indices, negative from the end (default: the final features)"
    )


def fewshot(parser: argparse.ArgumentParser) -> None:
    """The few-shot regression's ``--shots``, ``--l2-reg`` and ``--seed`` (fewshot, probe)."""
    parser.add_argument("--shots", type=int, nargs="+", default=choices.FEWSHOT_SHOTS, help="training images per class")
    parser.add_argument("--l2-reg", type=float, default=1.0, help="few-shot ridge regression strength")
    parser.add_argument("--seed", type=int, default=0, help="the few-shot draws (probe: and the validation split)")
