"""What a user meets before any work: ``vitzoo --help`` and each ``vitzoo COMMAND --help`` answer without importing
torch, every option says what it does and its default, the shared options mean one thing everywhere, and the lazy
``vitzoo`` package still gives every public name."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

import vitzoo
import vitzoo.cli
from conftest import cli, cli_env
from vitzoo import choices
from vitzoo.cli import options

COMMANDS = [
    "list",
    "download",
    "info",
    "predict",
    "zeroshot",
    "embed",
    "search",
    "analyze",
    "fewshot",
    "probe",
    "export",
    "finetune",
]


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120, check=False
    )


def test_help_of_vitzoo_and_every_command_imports_no_torch():
    """In a fresh interpreter: the real process answers `vitzoo --help` (no torch in its import log), and every
    command's --help through the entry point leaves torch unimported."""
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vitzoo", "--help"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert res.returncode == 0 and res.stdout.startswith("usage: vitzoo"), res
    imported = [line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time")]
    assert "vitzoo.cli" in imported and not [m for m in imported if m.split(".")[0] == "torch"]
    code = f"""
import contextlib, io, sys
from vitzoo.cli import main
for command in {COMMANDS!r}:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([command, "--help"])
    assert out.getvalue().startswith("usage: vitzoo " + command), (command, out.getvalue()[:200])
    assert "torch" not in sys.modules, command + " --help imported torch"
print("ok")
"""
    res = _python(code)
    assert res.returncode == 0 and res.stdout == "ok\n", res.stderr


def test_the_package_is_lazy_and_every_public_name_resolves():
    code = """
import sys
import vitzoo
assert "torch" not in sys.modules, "import vitzoo imported torch"
assert set(vitzoo.__all__) <= set(dir(vitzoo)), set(vitzoo.__all__) - set(dir(vitzoo))
from vitzoo import create_model, VitzooError
for name in vitzoo.__all__:
    assert getattr(vitzoo, name) is not None, name
assert vitzoo.create_model is create_model and create_model.__module__ == "vitzoo.factory"
try:
    vitzoo.no_such_name
except AttributeError as err:
    assert "no_such_name" in str(err)
else:
    raise AssertionError("an unknown name resolved")
print("ok")
"""
    res = _python(code)
    assert res.returncode == 0 and res.stdout == "ok\n", res.stderr


def test_the_commands_are_the_modules_of_the_cli_package():
    parser = vitzoo.cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(sub.choices) == COMMANDS
    for module in vitzoo.cli.COMMANDS:
        assert module.run.__module__ == module.__name__ and callable(module.add_parser)


def _command_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = vitzoo.cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_a_help_line_that_shows_its_default(command):
    parser = _command_parsers()[command]
    text = parser.format_help()
    assert "(default: None)" not in text and "(default: False)" not in text
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.option_strings[0]} has no help"
        shown = parser._get_formatter()._get_help_string(action)  # the line --help prints, before %-expansion
        if action.default is not None and action.default is not False:
            assert "(default" in (shown or ""), f"{command} {action.option_strings[0]}: no default in {shown!r}"


def test_defaults_are_shown_as_typed():
    help_text = " ".join(cli("probe", "--help").stdout.split())
    assert "k-NN neighbours (default: 10 20 100 200)" in help_text
    assert "training images per class (default: 1 5 10 25)" in help_text
    assert "(default: paper)" in " ".join(cli("finetune", "--help").stdout.split())


@pytest.mark.parametrize(
    "command", ["predict x img", "embed x img --out o", "export x --out o", "finetune x d --out o"]
)
def test_img_size_takes_one_or_two_positive_numbers(command):
    """`--img-size 1 2 3` used to take the first number silently."""
    args = command.split()
    parser = vitzoo.cli.build_parser()
    assert options.size_of(parser.parse_args([*args, "--img-size", "384"]).img_size) == 384
    assert options.size_of(parser.parse_args([*args, "--img-size", "320", "448"]).img_size) == (320, 448)
    assert options.size_of(parser.parse_args(args).img_size) is None
    for bad, needle in (("1 2 3", "expected N or H W, got 3 numbers"), ("0", "expected a whole number >= 1")):
        res = cli(*args, "--img-size", *bad.split())
        assert res.returncode == 2 and needle in res.stderr and "usage: vitzoo" in res.stderr, res.stderr


def test_export_and_finetune_share_the_model_options():
    parser = vitzoo.cli.build_parser()
    for args in (["export", "x", "--out", "o"], ["finetune", "x", "d", "--out", "o"]):
        assert parser.parse_args([*args, "--random-weights"]).random_weights is True
        assert parser.parse_args(args).random_weights is False
    assert parser.parse_args(["export", "x", "--out", "o", "--revision", "v1"]).revision == "v1"


def test_choices_name_what_the_library_takes():
    """The library reads its names from vitzoo.choices; the recipes are keyed by its RECIPES and every dtype name
    resolves."""
    from vitzoo.models.dtypes import DTYPES
    from vitzoo.train.recipes import RECIPES

    assert tuple(RECIPES) == choices.RECIPES
    assert set(choices.DTYPES) <= set(DTYPES)
