"""The results pages: one ``results/<stage>.md`` per stage under its provenance header, the same
content as data in ``results/<stage>.json``, and README's "Results so far" block built from that
data (never re-read from markdown)."""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from probing import provenance
from probing.writer import plain, to_markdown

log = logging.getLogger("probing.results")

README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"


@dataclass
class Block:
    """A part of a page: a heading, text before the table, the table's rows, text after it."""

    heading: str
    text: str = ""
    rows: list[dict] = field(default_factory=list)
    after: str = ""
    readme: bool = False  # shown in README's results block too

    def markdown(self, level: int = 2) -> str:
        parts = [f"{'#' * level} {self.heading}", self.text, to_markdown(self.rows) if self.rows else "", self.after]
        return "\n\n".join(p.strip() for p in parts if p and p.strip())


@dataclass
class Page:
    """What a stage writes: a title, an introduction and its blocks; ``link`` is its line in
    README's list of pages."""

    title: str
    intro: str
    blocks: list[Block] = field(default_factory=list)
    link: str = ""

    def markdown(self) -> str:
        return "\n\n".join([f"# {self.title}", self.intro.strip(), *(b.markdown() for b in self.blocks)]) + "\n"


def header(argv: list[str], wall_time_s: float, models: list[str]) -> tuple[str, dict]:
    """The provenance header (command, date, device, commit, versions) with the stage's wall time."""
    rec = provenance.record(" ".join(shlex.quote(a) for a in ["python", "-m", "probing.results", *argv]))
    rec.update(wall_time_s=round(wall_time_s, 1), models=list(models))
    text = (provenance.header(rec).rstrip() + f" This stage took {wall_time_s / 60:.1f} min "
            f"(models: {', '.join(models) or 'none'}).\n")
    return text, rec


def write(results: Path, name: str, page: Page, argv: list[str], wall_time_s: float, models: list[str],
          order: int) -> Path:
    """``results/<name>.md`` and ``results/<name>.json``; ``order`` places it in README's block."""
    results.mkdir(parents=True, exist_ok=True)
    text, rec = header(argv, wall_time_s, models)
    path = results / f"{name}.md"
    path.write_text(text + "\n" + page.markdown())
    data = {"provenance": rec, "order": order, **asdict(page)}
    (results / f"{name}.json").write_text(json.dumps(plain(data), indent=1, ensure_ascii=False) + "\n")
    log.info("wrote %s", path)
    return path


def readme_block(results: Path) -> str:
    """README's block from the pages' data: a link to every page, then every block a page marks
    for README, in stage order."""
    pages = []
    for path in sorted(results.glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "blocks" in data and "order" in data:
            pages.append((data["order"], path.stem, data))
    pages.sort(key=lambda p: (p[0], p[1]))
    parts = ["Written by `python -m probing.results` from the data beside each page in `results/` (do not edit by "
             "hand); each page opens with the command, date, device, commit and wall time behind it."]
    parts += [f"- **{data['link'] or data['title']}**: [`results/{name}.md`](results/{name}.md)"
              for _, name, data in pages]
    for _, _, data in pages:
        for block in data["blocks"]:
            if block.get("readme"):
                parts.append("\n" + Block(**block).markdown(level=4))
    return "\n".join(parts)


def update_readme(readme: Path, block: str) -> None:
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        log.warning("%s has no %s ... %s block; not updated", readme, README_BEGIN, README_END)
        return
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_BEGIN}\n{block}\n{README_END}{tail}")
