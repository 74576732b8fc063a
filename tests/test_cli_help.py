"""What a user meets before any work: the lazy ``vitzoo`` package still gives every public name without importing
torch up front, and the torch-free choices the command line offers are the library's."""

from __future__ import annotations

import subprocess
import sys

from conftest import cli_env
from vitzoo import choices


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120, check=False
    )


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


def test_choices_name_what_the_library_takes():
    """The torch-free lists the parsers offer equal the library's own tables (until the library reads them)."""
    from vitzoo import export
    from vitzoo.eval.probe_job import FEWSHOT_SHOTS
    from vitzoo.eval.probes import KNN_K
    from vitzoo.features.extract import DTYPES
    from vitzoo.models.vit import FEATURE_POOLS
    from vitzoo.train.finetune import RECIPES

    assert choices.FEATURE_POOLS == FEATURE_POOLS
    assert set(choices.DTYPES) == set(export.DTYPES) and set(choices.DTYPES) <= set(DTYPES)
    assert choices.EXPORT_FORMATS == export.FORMATS
    assert tuple(RECIPES) == choices.RECIPES
    assert (choices.KNN_K, choices.FEWSHOT_SHOTS) == (KNN_K, FEWSHOT_SHOTS)
