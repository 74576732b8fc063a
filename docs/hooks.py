"""mkdocs hooks: README and CHANGELOG as pages, and a build that fails on an undocumented public name.

mkdocstrings renders a missing docstring as an empty entry without a warning, so ``on_pre_build`` imports vitzoo
from this checkout and raises ``PluginError`` for every name of ``vitzoo.__all__`` (read at build time) and every
public method or property of a public class that has no docstring of its own, and for every name of ``__all__``
that docs/api.md does not render (or that it renders but ``__all__`` no longer exports).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
API_PAGE = ROOT / "docs" / "api.md"


def _import_vitzoo() -> ModuleType:
    """vitzoo from this checkout, imported afresh (``mkdocs serve`` rebuilds in one process)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    for name in [m for m in sys.modules if m == "vitzoo" or m.startswith("vitzoo.")]:
        del sys.modules[name]
    return importlib.import_module("vitzoo")


def _own_doc(obj: object) -> str | None:
    """The docstring written for ``obj`` itself: not inherited, not the signature dataclasses make up."""
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and doc and doc.startswith(f"{obj.__name__}("):
        return None  # @dataclass sets __doc__ to "Name(field: type, ...)" when the class has none
    return doc.strip() if isinstance(doc, str) and doc.strip() else None


def _public_members(cls: type) -> dict[str, object]:
    """Methods and properties a class defines itself (inherited ones belong to the base's documentation)."""
    members: dict[str, object] = {}
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(attr, (staticmethod, classmethod)):
            members[name] = attr.__func__
        elif isinstance(attr, property) or inspect.isfunction(attr):
            members[name] = attr
    return members


def undocumented(package: ModuleType) -> list[str]:
    """``vitzoo.X`` and ``vitzoo.X.method`` names of the public API that have no docstring."""
    missing = []
    for name in package.__all__:
        obj = getattr(package, name)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue  # a constant cannot carry a docstring at runtime
        if _own_doc(obj) is None:
            missing.append(f"{package.__name__}.{name}")
        if inspect.isclass(obj):
            members = _public_members(obj).items()
            missing += [f"{package.__name__}.{name}.{m}" for m, attr in members if _own_doc(attr) is None]
    return missing


def api_page_mismatch(package: ModuleType) -> list[str]:
    """Differences between ``__all__`` and the ``::: vitzoo.NAME`` entries of docs/api.md."""
    rendered = re.findall(rf"^:::\s*{package.__name__}\.(\w+)\s*$", API_PAGE.read_text(), flags=re.MULTILINE)
    public = [n for n in package.__all__ if not n.startswith("__")]  # __version__: a string, named in the page's text
    problems = [f"add '::: {package.__name__}.{n}' to docs/api.md" for n in public if n not in rendered]
    problems += [f"'{package.__name__}.{n}' is not in __all__: remove it from docs/api.md" for n in rendered
                 if n not in package.__all__]  # fmt: skip
    return problems


def on_pre_build(config: MkDocsConfig) -> None:
    package = _import_vitzoo()
    problems = [f"no docstring: {name}" for name in undocumented(package)]
    problems += api_page_mismatch(package)
    if problems:
        raise PluginError("the API reference is incomplete:\n  " + "\n  ".join(problems))


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """README.md as the home page (its docs/ links made site-relative) and CHANGELOG.md as a page."""
    readme = (ROOT / "README.md").read_text()
    index = readme.replace("](docs/", "](").replace("](CHANGELOG.md)", "](changelog.md)")
    files.append(File.generated(config, "index.md", content=index))
    files.append(File.generated(config, "changelog.md", content=(ROOT / "CHANGELOG.md").read_text()))
    return files
