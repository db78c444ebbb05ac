"""The one output writer: tables (CSV + Markdown), figures (PNG + SVG + PDF), HTML pages and JSON,
each also logged to a W&B run when one is given. Analysis jobs, ``compare`` and the results scripts all
write through it, so every output of the project has the same formats.

A missing value (``None`` or NaN: a statistic the model's token layout cannot have) is written as
an empty CSV cell, ``n/a`` in Markdown, ``null`` in JSON and ``None`` in W&B; never as 0.
"""

from __future__ import annotations

import csv
import json as _json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FIGURE_FORMATS = ("png", "svg", "pdf")  # PNG for reports and W&B; SVG and PDF for papers
MISSING = "n/a"


def plain(x):
    """Numpy scalars/arrays -> Python values, NaN -> None, recursively through dicts and lists.

    W&B types a table column by its first row and does not take ``np.str_`` for ``str``; JSON has
    no NaN.
    """
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return plain(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def is_missing(v) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and math.isnan(v))


def to_markdown(rows: list[dict], columns: Sequence[str] | None = None, digits: int = 3) -> str:
    """A pipe table; floats with ``digits`` decimals, missing values as ``n/a``."""
    if not rows:
        return "(no rows)"
    columns = list(columns or _columns(rows))

    def fmt(v):
        if is_missing(v):
            return MISSING
        if isinstance(v, (float, np.floating)):
            return f"{v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _columns(rows: list[dict]) -> list[str]:
    """Every key of every row, in first-seen order (rows may differ in their keys)."""
    return list(dict.fromkeys(k for r in rows for k in r))


class Writer:
    """Writes into ``out`` (created on first use); logs to ``wandb_run`` (a ``wandb`` Run) if set."""

    def __init__(self, out: Path, wandb_run=None):
        self.out = Path(out)
        self.wandb_run = wandb_run

    def sub(self, name: str) -> Writer:
        """A writer for a sub-folder (a report's job), logging to the same run."""
        return Writer(self.out / name, self.wandb_run)

    def _dir(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        return self.out

    def table(self, name: str, rows: list[dict], digits: int = 3) -> str:
        """``name.csv`` and ``name.md`` (+ a W&B Table ``name``); returns the Markdown."""
        out = self._dir()
        columns = _columns(rows)
        with open(out / f"{name}.csv", "w", newline="") as f:
            if rows:
                w = csv.DictWriter(f, fieldnames=columns, restval="")
                w.writeheader()
                w.writerows({c: "" if is_missing(r.get(c)) else plain(r.get(c)) for c in columns} for r in rows)
        text = to_markdown(rows, columns, digits)
        (out / f"{name}.md").write_text(text + "\n")
        if self.wandb_run is not None and rows:
            import wandb

            # plain Python values, and mixed types allowed: a paper column holds numbers where the
            # paper has the row and None where it has not
            data = [[plain(r.get(c)) for c in columns] for r in rows]
            self.wandb_run.log({name: wandb.Table(columns=columns, data=data, allow_mixed_types=True)})
        return text

    def figure(self, fig, name: str) -> list[Path]:
        """``fig`` (a ``matplotlib.figure.Figure``) as ``name.png``, ``.svg`` and ``.pdf`` (+ a W&B
        Image); returns the three paths, PNG first."""
        import matplotlib  # only where a figure is written: a job that submits others never needs it

        out = self._dir()
        paths = [out / f"{name}.{ext}" for ext in FIGURE_FORMATS]
        # no creation date in SVG/PDF and fixed SVG ids, so an unchanged figure is an unchanged file
        with matplotlib.rc_context({"svg.hashsalt": "probing"}):
            for path in paths:
                fig.savefig(path, dpi=120, metadata={"Date": None} if path.suffix != ".png" else None)
        if self.wandb_run is not None:
            import wandb

            self.wandb_run.log({name: wandb.Image(str(paths[0]))})
        return paths

    def html(self, name: str, text: str) -> Path:
        """``name.html`` holding ``text`` (+ a W&B Html ``name``, passed through unchanged)."""
        path = self._dir() / f"{name}.html"
        path.write_text(text, encoding="utf-8")
        if self.wandb_run is not None:
            import wandb

            # inject=False: W&B would add its own stylesheet, fetched from the network
            self.wandb_run.log({name: wandb.Html(str(path), inject=False)})
        return path

    def json(self, name: str, obj: dict) -> Path:
        """``name.json`` (+ its top-level scalars into the W&B run summary, see :meth:`summary`)."""
        path = self._dir() / f"{name}.json"
        obj = plain(obj)
        path.write_text(_json.dumps(obj, indent=1, default=str))
        self.summary(name, obj)
        return path

    def summary(self, name: str, obj: dict) -> None:
        """The top-level scalars of ``obj`` into the W&B run summary as ``name/key`` (no file: a
        run's summary is written with its record)."""
        if self.wandb_run is not None:
            scalars = {f"{name}/{k}": v for k, v in plain(obj).items() if isinstance(v, (bool, int, float, str))}
            self.wandb_run.summary.update(scalars)

    def text(self, name: str, text: str, suffix: str = "md") -> Path:
        """``name.<suffix>``: a page of the run's own (its section's markdown, a report)."""
        path = self._dir() / f"{name}.{suffix}"
        path.write_text(text)
        return path
