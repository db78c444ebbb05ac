"""What every benchmark script does with its results."""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probing import provenance  # noqa: E402
from probing.writer import to_markdown  # noqa: E402


def write_results(out: Path, text: str, rows: list[dict], command: str | None = None) -> None:
    """The markdown table to ``out`` under a header naming the run (command, date, device,
    commit), the rows beside it as JSON (what run_all.py reads), and the table to stdout."""
    out.parent.mkdir(parents=True, exist_ok=True)
    rec = provenance.record(command)
    out.write_text(provenance.header(rec) + "\n" + text)
    out.with_suffix(".json").write_text(json.dumps({"provenance": rec, "rows": rows}, indent=1))
    print(text)


def extraction_parser(doc: str, models: list[str], variants: tuple[str, ...], limit: int | None,
                      out: str) -> argparse.ArgumentParser:
    """The arguments of a script timing one extraction variant per process (``--worker``)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=models)
    parser.add_argument("--variants", nargs="+", default=list(variants), choices=variants)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=limit)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "outputs" / "benchmarks" / out)
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    return parser


def markdown_table(columns: list[str], rows: list[list]) -> str:
    """The project's pipe table (:func:`probing.writer.to_markdown`) of ``rows`` given as lists of
    cells in ``columns`` order."""
    return to_markdown([dict(zip(columns, row)) for row in rows], columns)


def read_rows(path: Path) -> list[dict]:
    """Rows written by :func:`write_results` (or the bare list older runs wrote)."""
    data = json.loads(path.read_text())
    return data["rows"] if isinstance(data, dict) else data


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(row: dict) -> dict:
    """``row`` with its sentences per second and this process's peak RSS."""
    return {**row, "sent_per_s": row["sentences"] / row["seconds"], "peak_rss_mb": peak_rss_mb()}


def time_over(rows: list[dict], row: dict, variant: str, *same: str) -> float:
    """``row``'s seconds over those of the ``variant`` row that agrees with it on the keys ``same``
    (NaN if there is none)."""
    other = next((r for r in rows if r["variant"] == variant and all(r[k] == row[k] for k in same)), None)
    return row["seconds"] / other["seconds"] if other else float("nan")
