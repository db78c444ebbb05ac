"""What every benchmark script does with its results."""

from __future__ import annotations

import json
from pathlib import Path


def write_results(out: Path, text: str, rows: list[dict]) -> None:
    """The markdown table to ``out``, the rows beside it as JSON (what run_all.py reads), and
    the table to stdout."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(text)
