#!/usr/bin/env bash
# Regenerate the generated parts of the docs from the registry (run after changing vitzoo/registry.py or the tags).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m vitzoo list --format markdown > docs/models.md
python - <<'PY'
import subprocess, sys
from pathlib import Path

doc = Path("docs/pretrained.md")
text = doc.read_text()
head, rest = text.split("<!-- BEGIN PRETRAINED TABLE -->\n")
_, tail = rest.split("<!-- END PRETRAINED TABLE -->")
table = subprocess.run(
    [sys.executable, "-m", "vitzoo", "list", "--pretrained", "--format", "markdown"], check=True, capture_output=True, text=True
).stdout
doc.write_text(head + "<!-- BEGIN PRETRAINED TABLE -->\n" + table + "<!-- END PRETRAINED TABLE -->" + tail)
PY
