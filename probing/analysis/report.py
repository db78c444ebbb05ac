"""The report: every job of ``conf/analysis/`` on one model, into ``report.md`` and a
self-contained ``report.html`` (figures inlined).

Jobs are found, not listed: each ``conf/analysis/*.yaml`` but the report's own and those whose
class says ``in_report = False`` is composed with Hydra's compose API as ``analyze.yaml`` with
``analysis=<name>`` plus the run's own overrides that are not about ``analysis``, then
``job_overrides[name]``, and run into the sub-folder ``<name>/``.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate

from probing.analysis.base import CONF_DIR, Context, Section, job_classes

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


def write_report(ctx: Context, sections: list[Section]) -> tuple[Path, Path]:
    title = f"What does {ctx.encoder.name} look at? ({ctx.corpus.name})"
    caveat = ctx.caveat()
    md = [f"# {title}", "", f"> {caveat}", ""]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p class=caveat>{_inline(caveat)}</p>"]
    for s in sections:
        # each job's own output opens with the caveat; the report states it once, at the top,
        # and keeps a section's own only where it differs (coreference reads another corpus)
        text = s.markdown.removeprefix(caveat).lstrip("\n")
        md += [f"## {s.title}", "", text, ""]
        body += [f"<h2>{html.escape(s.title)}</h2>", markdown_to_html(text)]
        for fig in s.figures:
            rel = fig.relative_to(ctx.out)
            md += [f"![{fig.stem}]({rel})", ""]
            data = base64.b64encode(fig.read_bytes()).decode()
            body.append(f'<figure><img alt="{fig.stem}" src="data:image/png;base64,{data}"><figcaption>{rel}</figcaption></figure>')
    md_path, html_path = ctx.out / "report.md", ctx.out / "report.html"
    md_path.write_text("\n".join(md))
    style = ("body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse;font-size:90%}"
             "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}.caveat{background:#fff3cd;padding:.5em}")
    html_path.write_text(f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
                         f"<style>{style}</style>\n" + "\n".join(body))
    return md_path, html_path


def _key(override) -> str:
    return f"{override.key_or_group}@{override.package}" if override.package else override.key_or_group


def _about_analysis(override) -> bool:
    key, package = override.key_or_group, override.package or ""
    return key == "analysis" or key.startswith("analysis.") or package == "analysis" or package.startswith("analysis.")


def compose_overrides(run: list[str], extra: list[str]) -> list[str]:
    """The run's overrides that are not about ``analysis``, then ``extra``; a later override of
    the same key replaces an earlier one (Hydra refuses two values for one key)."""
    parser = OverridesParser.create()
    kept = [o for o in parser.parse_overrides(list(run)) if not _about_analysis(o)]
    merged: dict[str, str] = {}
    for o in kept + parser.parse_overrides(list(extra)):
        merged.pop(_key(o), None)
        merged[_key(o)] = o.input_line
    return list(merged.values())


def _relative(override: str, job_class: type) -> str:
    """``min_count=50`` -> ``analysis.min_count=50`` where ``min_count`` is a field of the job;
    any other override (``split=train``, ``data@analysis.corpus=tiny``) passes as it is."""
    bare = override.lstrip("+~")
    sign = override[: len(override) - len(bare)]
    field_name = bare.split("=", 1)[0].split(".", 1)[0]
    if field_name in {f.name for f in dataclasses.fields(job_class)}:
        return f"{sign}analysis.{bare}"
    return override


def compose_analysis(overrides: list[str]):
    """``analyze.yaml`` composed with ``overrides``, inside a running Hydra app or outside one."""
    if GlobalHydra.instance().is_initialized():
        return compose(config_name="analyze", overrides=overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="analyze", overrides=overrides)


@dataclass
class ReportJob:
    """Runs every job of ``conf/analysis/`` on the run's model and writes one report."""

    in_report: ClassVar[bool] = False
    tiny_overrides: ClassVar[list[str]] = ["analysis.tiny=true"]
    # {job: [overrides]}: the job's fields by name (min_count=50), or any override (split=train)
    job_overrides: dict[str, list[str]] | None = None
    order: list[str] = field(default_factory=list)  # these first; the others after, alphabetically
    skip: list[str] = field(default_factory=list)
    tiny: bool = False  # compose every job with its class's tiny_overrides (smoke runs on tiny data)

    def jobs(self) -> list[str]:
        found = {name: cls for name, cls in job_classes().items()
                 if getattr(cls, "in_report", True) and name not in self.skip}
        unknown = set(self.job_overrides or {}) - set(job_classes())
        if unknown:
            raise ValueError(f"analysis.job_overrides names jobs the report does not run: {sorted(unknown)}")
        return [n for n in self.order if n in found] + sorted(set(found) - set(self.order))

    def run(self, ctx: Context) -> Section:
        run_overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
        classes = job_classes()
        sections = []
        for name in self.jobs():
            extra = list(classes[name].tiny_overrides) if self.tiny else []
            extra += [_relative(o, classes[name]) for o in (self.job_overrides or {}).get(name, [])]
            cfg = compose_analysis([f"analysis={name}", *compose_overrides(run_overrides, extra)])
            job = instantiate(cfg.analysis, _convert_="all")
            log.info("report: running %s", name)
            # the job runs as `analyze.py analysis=<name>` with these overrides would; only the output
            # folder and the attention cache stay the run's
            sub = Context(instantiate(cfg.model), instantiate(cfg.data), instantiate(cfg.extract), ctx.cache_root,
                          cfg.split, ctx.out / name, ctx.writer.sub(name))
            section = job.run(sub)
            # what a later comparison (analysis=families analysis.reports=...) reads instead of re-running
            sub.writer.json("section", {"title": section.title, "summary": section.summary})
            sections.append(section)
        write_report(ctx, sections)
        return Section("Report", f"{len(sections)} sections", [], {s.title: s.summary for s in sections})
