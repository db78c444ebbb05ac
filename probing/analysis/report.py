"""The report: every job of ``conf/analysis/`` on one model, into ``report.md`` and a
self-contained ``report.html`` (figures inlined).

Jobs are found, not listed: each ``conf/analysis/*.yaml`` but the report's own and those whose
class says ``in_report = False`` is composed by the runner as ``analyze.yaml`` with
``analysis=<name>`` plus the run's own overrides that are not about ``analysis``, then
``job_overrides[name]``, and run into the sub-folder ``<name>/``, where it leaves its own record.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from probing import runner
from probing.analysis.base import Context, Section, job_classes
from probing.record import RunRecord

log = logging.getLogger(__name__)


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def markdown_to_html(md: str) -> str:
    """Enough markdown for our sections: paragraphs, pipe tables, bold and code spans."""
    out, table = [], []
    for block in md.split("\n\n"):
        lines = [ln for ln in block.strip().splitlines() if ln.strip()]
        if lines and all(ln.startswith("|") for ln in lines):
            rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines if not set(ln) <= set("|-: ")]
            head, *body = rows
            table = ["<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
            table += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body]
            out.append("\n".join(table) + "</table>")
        elif lines:
            out.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(out)


def _own_links(rec: RunRecord, out: Path) -> str:
    """A job's markdown with the links to its own files (by name) made relative to ``out``."""
    where = rec.dir.relative_to(out)
    return re.sub(r"\]\(([^)/:]+)\)", lambda m: f"]({where / m.group(1)})" if (rec.dir / m.group(1)).is_file()
                  else m.group(0), rec.markdown)


def write_report(ctx: Context, records: list[RunRecord]) -> tuple[Path, Path]:
    """``report.md`` and a self-contained ``report.html`` (figures inlined) from the jobs' records.
    The run's caveat is stated once, at the top; a section keeps its own where it differs
    (coreference reads another corpus)."""
    title = f"What does {ctx.encoder.name} look at? ({ctx.corpus.name})"
    caveat = ctx.caveat()
    md = [f"# {title}", "", f"> {caveat}", ""]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p class=caveat>{_inline(caveat)}</p>"]
    for rec in records:
        own = [f"> {rec.caveat}", ""] if rec.caveat != caveat else []
        # a job links its own files by name: from the report they lie in the job's folder
        text = _own_links(rec, ctx.out)
        md += [f"## {rec.title}", "", *own, text, ""]
        body += [f"<h2>{html.escape(rec.title)}</h2>", *([f"<p class=caveat>{_inline(rec.caveat)}</p>"] if own else []),
                 markdown_to_html(text)]
        for fig in rec.figures:
            path = rec.dir / fig
            rel = path.relative_to(ctx.out)
            md += [f"![{path.stem}]({rel})", ""]
            data = base64.b64encode(path.read_bytes()).decode()
            body.append(f'<figure><img alt="{path.stem}" src="data:image/png;base64,{data}"><figcaption>{rel}</figcaption></figure>')
    style = ("body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse;font-size:90%}"
             "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}.caveat{background:#fff3cd;padding:.5em}")
    md_path = ctx.writer.text("report", "\n".join(md))
    html_path = ctx.writer.text("report", f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
                                          f"<style>{style}</style>\n" + "\n".join(body), suffix="html")
    return md_path, html_path


def _relative(override: str, job_class: type) -> str:
    """``min_count=50`` -> ``analysis.min_count=50`` where ``min_count`` is a field of the job;
    any other override (``split=train``, ``data@analysis.corpus=tiny``) passes as it is."""
    bare = override.lstrip("+~")
    sign = override[: len(override) - len(bare)]
    field_name = bare.split("=", 1)[0].split(".", 1)[0]
    if field_name in {f.name for f in dataclasses.fields(job_class)}:
        return f"{sign}analysis.{bare}"
    return override


@dataclass(kw_only=True)
class ReportJob:
    """Runs every job of ``conf/analysis/`` on the run's model and writes one report."""

    in_report: ClassVar[bool] = False
    tiny_overrides: ClassVar[list[str]] = ["analysis.tiny=true"]
    # {job: [overrides]}: the job's fields by name (min_count=50), or any override (split=train)
    job_overrides: dict[str, list[str]] | None
    order: list[str]  # these first; the others after, alphabetically
    skip: list[str]
    tiny: bool  # compose every job with its class's tiny_overrides (smoke runs on tiny data)
    # a job whose finished run lies in <out>/<job>/ already: "same_commit" reads it if the same
    # committed code ran the same config; "never" runs every job again
    reuse: str

    def jobs(self) -> list[str]:
        found = {name: cls for name, cls in job_classes().items() if cls.in_report and name not in self.skip}
        unknown = set(self.job_overrides or {}) - set(job_classes())
        if unknown:
            raise ValueError(f"analysis.job_overrides names jobs the report does not run: {sorted(unknown)}")
        return [n for n in self.order if n in found] + sorted(set(found) - set(self.order))

    def run(self, ctx: Context) -> Section:
        classes = job_classes()
        records = []
        for name in self.jobs():
            extra = list(classes[name].tiny_overrides) if self.tiny else []
            extra += [_relative(o, classes[name]) for o in (self.job_overrides or {}).get(name, [])]
            log.info("report: running %s", name)
            # the job runs as `analyze.py analysis=<name>` with these overrides would, into <out>/<name>/
            cfg, inv = runner.compose("analyze", [f"analysis={name}", *runner.sub_job_overrides(ctx.overrides, extra)],
                                      ctx.out / name, paths=ctx.paths)
            records.append(runner.run(cfg, inv, wandb_run=ctx.writer.wandb_run, reuse=self.reuse))
        write_report(ctx, records)
        return Section("Report", f"{len(records)} sections: " + ", ".join(r.title for r in records), [],
                       {r.name: r.summary for r in records})
