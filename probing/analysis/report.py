"""``report.md`` and a self-contained ``report.html`` (figures inlined) from the jobs' sections."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path


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


def write_report(ctx, sections) -> tuple[Path, Path]:
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
