"""The package's shape: imports point down the layers, none hide in functions, and one module parses names.

Layers (scripts/import_graph.py): model <- weights <- api <- data <- eval / train <- cli, by subpackage.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _graph_tool():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module
    spec.loader.exec_module(module)
    return module


ig = _graph_tool()
MODULES = sorted(ig.PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    units = {ig.unit_of(ig.module_name(p)) for p in MODULES}
    assert units <= set(ig.RANK), f"add {sorted(units - set(ig.RANK))} to LAYERS in scripts/import_graph.py"


def test_imports_point_down_the_layers_and_never_hide_in_functions():
    bad = []
    for path in MODULES:
        unit = ig.unit_of(ig.module_name(path))
        for target, line, in_function in ig.imports(path):
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            if in_function and unit not in ig.LAZY_UNITS:
                bad.append(f"{where} inside a function")
            elif ig.unit_of(target) != unit and ig.RANK[ig.unit_of(target)] > ig.RANK[unit]:
                bad.append(f"{where}, a higher layer")
    assert not bad, "\n".join(bad)


def _assert_acyclic(graph: dict[str, set[str]]) -> None:
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            assert state.get(dep) != 1, f"import cycle: {' -> '.join([*stack, node, dep])}"
            if dep not in state:
                visit(dep, [*stack, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_no_import_cycles_between_modules_or_packages():
    """Module by module (a package's __init__ counts as a module), and package by package within a layer."""
    _assert_acyclic(ig.module_graph())
    _assert_acyclic(ig.unit_graph())


def test_the_name_grammar_is_parsed_in_source_py_only():
    """No module but source.py tests or strips the 'hf-hub:' / 'local-dir:' prefixes of a name."""
    offenders = []
    for path in MODULES:
        if path.name == "source.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr in ("startswith", "removeprefix", "partition", "split"):
                args = [a.value for a in node.args if isinstance(a, ast.Constant)]
                args += [
                    e.value
                    for a in node.args
                    if isinstance(a, ast.Tuple)
                    for e in a.elts
                    if isinstance(e, ast.Constant)
                ]
                if any(a in ("hf-hub:", "local-dir:") for a in args):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_architecture_doc_shows_the_current_graph():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    assert ig.markdown() in doc, "regenerate the block with: python scripts/import_graph.py --write"


# Third-party imports allowed inside a function: the optional extras, imported when used so that the core install
# works without them (each one's ImportError names its extra).
LAZY_IMPORTS = {
    "eval.plots": {"matplotlib", "matplotlib.pyplot"},  # vitzoo[plot]
    "features.inputs": {"pyarrow.parquet"},  # vitzoo[parquet]
    "export": {"onnx"},  # vitzoo[export]: the guard added to a dynamic-size graph (torch.onnx.export needed it first)
    # vitzoo[export]: runtime onnxruntime, int8 through its quantiser, and auto's look for what is installed
    "features.runtimes": {"onnx", "onnxruntime", "onnxruntime.quantization", "onnxscript"},
    "weights.tokenizers.clip": {"regex"},  # vitzoo[text]: CLIP's pattern as open_clip compiles it
    "weights.tokenizers.hf": {"tokenizers", "tokenizers.models"},  # vitzoo[text]: tokenizer.json
    "weights.tokenizers.text": {"ftfy"},  # vitzoo[text]: open_clip's text cleaning
    # Not an extra: `vitzoo embed`'s torchrun set-up, imported when the command runs so that --help needs no torch,
    # until the distributed set-up is one library helper (embed and finetune)
}


def test_lazy_imports_are_the_optional_extras():
    found: dict[str, set[str]] = {}
    for path in MODULES:
        for func in ast.walk(ast.parse(path.read_text())):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    names = {a.name for a in node.names if not a.name.startswith("vitzoo")}
                    found.setdefault(ig.module_name(path), set()).update(names)
                elif (
                    isinstance(node, ast.ImportFrom)
                    and node.level == 0
                    and not (node.module or "vitzoo").startswith("vitzoo")
                ):
                    found.setdefault(ig.module_name(path), set()).add(node.module)
    found = {module: names for module, names in found.items() if names}
    assert found == LAZY_IMPORTS, "import at module level, or add an optional extra to LAZY_IMPORTS"


def test_tests_share_helpers_through_conftest_only():
    """A test module imports no other test module: what several share (fixtures, helpers) lives in conftest.py."""
    offenders = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}:{node.lineno} imports {n}" for n in names if n.startswith("test_")]
    assert not offenders, offenders


def test_the_architecture_doc_lists_every_module():
    """docs/architecture.md's module table names every module (a folder row with no module rows of its own, such as
    ``weights/formats/``, stands for its modules; ``a.py``, ``b.py`` after a full path are in its folder)."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    table = doc[doc.index("## Modules") : doc.index("### Layers")]
    listed: set[str] = set()
    for row in table.splitlines():
        if not row.startswith(("| `vitzoo/", "| **`vitzoo/")):
            continue
        folder = ""
        for name in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
            path = name if name.startswith("vitzoo/") else folder + name
            folder = path.rsplit("/", 1)[0] + "/"
            listed.add(path)
    modules = {str(p.relative_to(ROOT)) for p in MODULES}
    whole = {f for f in listed if f.endswith("/") and not any(n.startswith(f) and n.endswith(".py") for n in listed)}
    covered = {m for m in modules if any(m.startswith(folder) for folder in whole)}
    covered |= {f"{folder}__init__.py" for folder in listed if folder.endswith("/")}  # a package's row is its own
    missing = sorted(modules - listed - covered)
    stale = sorted(n for n in listed if n.endswith(".py") and n not in modules)
    assert not missing and not stale, f"not in the table: {missing}; in the table but gone: {stale}"


GENERATED = {"vitzoo/weights/tags.py"}  # scripts/gen_pretrained.py writes it: the checkpoint table, one entry a row


def test_no_hand_written_module_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 500}
    assert long.keys() <= GENERATED, f"split these by what they hold: {long}"
