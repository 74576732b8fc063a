#!/usr/bin/env bash
# Regenerate the generated parts of the docs from the registry (run after changing vitzoo/models/archs.py or the tags
# in vitzoo/weights/tags.py): docs/models.md and the checkpoint table of docs/pretrained.md, from vitzoo.catalog (what
# `vitzoo list --format markdown` and `vitzoo list --pretrained --format markdown` print).
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
from pathlib import Path

from vitzoo.catalog import models_markdown, pretrained_markdown

Path("docs/models.md").write_text(models_markdown())
doc = Path("docs/pretrained.md")
head, rest = doc.read_text().split("<!-- BEGIN PRETRAINED TABLE -->\n")
_, tail = rest.split("<!-- END PRETRAINED TABLE -->")
doc.write_text(head + "<!-- BEGIN PRETRAINED TABLE -->\n" + pretrained_markdown() + "<!-- END PRETRAINED TABLE -->" + tail)
PY
