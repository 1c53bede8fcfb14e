"""Model configs that tests add to a copied fixture project."""
from __future__ import annotations

from pathlib import Path


def baseline_copy(project: Path) -> None:
    """conf/model/lookup_v1.yaml: the baseline's code and answers under another version (so another model, not
    the baseline itself, which a gate refuses): a challenger that improves nothing, BLOCKED."""
    text = (project / "conf" / "model" / "lookup.yaml").read_text(encoding="utf-8")
    (project / "conf" / "model" / "lookup_v1.yaml").write_text(
        text.replace("name: lookup\n", "name: lookup_v1\nversion: \"1\"\n"), encoding="utf-8")
