"""The run record: the one typed thing every run leaves behind, written and read only here.

A probe run (``train.py``), an analysis job (``analyze.py``) and an extraction (``extract.py``)
each end with ``record.json`` in their run directory: what ran (config, overrides, model, data,
seed), what came out (metrics for a probe, the job's summary, title, markdown and figures for an
analysis), how training ended (best epoch, epochs run, epoch limit), the caveat beside the
numbers, the provenance (command, date, device, commit, package versions) and the wall time.
Every table of the project (``probing.compare``, ``probing.results``, the ``families`` job) reads
records through :func:`read` / :func:`collect`, never another tool's JSON.

Records written before this module (a bare ``metrics.json`` of ``train.py``) are still read where
they carry what a record needs; otherwise :class:`RecordError` says how to regenerate them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from probing.errors import ProbingError
from probing.writer import plain

SCHEMA = 1
FILE = "record.json"
LEGACY_PROBE_FILE = "metrics.json"
KINDS = ("probe", "analysis", "extract")


class RecordError(ProbingError, ValueError):
    """A record that cannot be read: the message names the file and how to regenerate it."""


@dataclass
class RunRecord:
    """What one run leaves behind (see the module docstring).

    ``name``: the probe config (``attn_plus_glove``), the analysis job (``syntax_heads``) or
    ``extract``. ``model`` is None for a run that read no model (an attention-free probe).
    ``metrics``: ``{"val/uas": 0.70, ...}`` (fractions) for a probe, empty otherwise.
    ``summary``: the job's JSON-able numbers (analysis) or the cache's description (extract).
    ``markdown`` is the job's text without the caveat; ``figures`` PNG paths relative to ``dir``.
    """

    kind: str
    name: str
    model: str | None
    data: str
    split: str | dict
    seed: int
    random_init: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    title: str = ""
    markdown: str = ""
    figures: list[str] = field(default_factory=list)
    best_epoch: int | None = None
    epochs_run: int | None = None
    max_epochs: int | None = None
    lr: float | None = None
    caveat: str = ""
    config: dict = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    wall_time_s: float | None = None
    schema: int = SCHEMA
    dir: Path | None = field(default=None, compare=False, repr=False)  # where it was read from

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"record kind must be one of {KINDS}, not {self.kind!r}")

    # --- reading the config --------------------------------------------------------------------
    def get(self, dotted: str, default=None):
        """A value of the run's resolved config, ``record.get("extract.quantity")``."""
        node = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def quantity(self) -> str:
        """The maps the run read (``extract.quantity``); a record written before that setting
        existed read the attention weights."""
        return self.get("extract.quantity", "attention")

    @property
    def converged(self) -> bool | None:
        """False when training stopped at its epoch limit rather than by early stopping; None for
        a run that trained nothing (a rule) or ran one fixed epoch (the paper's recipe)."""
        if self.best_epoch is None or self.max_epochs is None or self.max_epochs <= 1:
            return None
        return self.epochs_run is None or self.epochs_run < self.max_epochs

    # --- files ---------------------------------------------------------------------------------
    def write(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        data = plain({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "dir"})
        path = directory / FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        os.replace(tmp, path)  # a reader never sees half a record
        self.dir = directory
        return path


def read(path: str | Path) -> RunRecord:
    """The record in a run directory (or at ``path``); a legacy ``metrics.json`` is converted."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE if (path / FILE).is_file() else path / LEGACY_PROBE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"{path.parent}: no {FILE}; not a finished run (re-run it)") from None
    except ValueError as e:
        raise RecordError(f"{path}: not JSON ({e}); re-run the run that wrote it") from None
    if path.name == LEGACY_PROBE_FILE:
        data = _from_legacy_metrics(data, path)
    if data.get("schema", 0) > SCHEMA:
        raise RecordError(f"{path}: record schema {data['schema']} is newer than this code's {SCHEMA}; update probing")
    known = {f.name for f in dataclasses.fields(RunRecord)}
    rec = RunRecord(**{k: v for k, v in data.items() if k in known})
    rec.dir = path.parent
    return rec


def _from_legacy_metrics(data: dict, path: Path) -> dict:
    """A ``metrics.json`` of ``train.py`` before records existed, as record fields."""
    name = data.get("probe_config")
    if not name:
        raise RecordError(f"{path}: an old metrics.json without probe_config (the probe's config name); regenerate "
                          f"it with `python train.py probe=<name> ...` (python -m probing.results does so)")
    metrics = {k: float(v) for k, v in data.items() if "/" in k and isinstance(v, (int, float))}
    attention = not str(data.get("caveat", "")).startswith("No attention")
    return {"kind": "probe", "name": name, "model": data.get("model") if attention else None,
            "data": data.get("data", ""), "split": {}, "seed": int(data.get("seed", 0)),
            "random_init": bool(data.get("random_init", False)), "metrics": metrics,
            "best_epoch": data.get("best_epoch"), "epochs_run": data.get("epochs_run"),
            "max_epochs": data.get("max_epochs"), "lr": data.get("lr"), "caveat": data.get("caveat", ""),
            "schema": 0}


def collect(*roots: str | Path, kind: str | None = None) -> list[RunRecord]:
    """Every record under ``roots`` (recursively), in path order; legacy files where no record is."""
    found: dict[Path, Path] = {}
    for root in roots:
        for name in (FILE, LEGACY_PROBE_FILE):
            for p in sorted(Path(root).rglob(name)):
                found.setdefault(p.parent, p)  # a record.json wins over a metrics.json beside it
    records = [read(p) for _, p in sorted(found.items())]
    return [r for r in records if kind is None or r.kind == kind]


# --- summaries over seeds ------------------------------------------------------------------------
STD_NAME = "mean ± sample std (n−1) over n seeds"


def mean_std(values: Sequence[float], scale: float = 100.0, digits: int = 1) -> str:
    """``"70.1 ± 0.2 (n=3)"``: the mean and the sample standard deviation (ddof=1) of ``values``
    times ``scale``, with the number of values; one value has no spread (``"58.1 (n=1)"``);
    ``"—"`` for none. Every table of the project formats seeds with this function."""
    v = [float(x) for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return "—"
    a = scale * np.asarray(v)
    if len(a) == 1:
        return f"{a[0]:.{digits}f} (n=1)"
    return f"{a.mean():.{digits}f} ± {a.std(ddof=1):.{digits}f} (n={len(a)})"


def sample_std(values: Iterable[float]) -> float:
    """The sample standard deviation (ddof=1); 0 for fewer than two values."""
    a = np.asarray(list(values), dtype=float)
    return float(a.std(ddof=1)) if len(a) > 1 else 0.0
