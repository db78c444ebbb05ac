import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from probing.analysis.view import draw_heads, draw_heatmap, write_attention_html

WORDS = ["the", "dog", "</script><b>", "."]  # a hostile token must not break the page


def maps(num_layers=2, num_heads=2, t=6, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(t), size=(num_layers * num_heads, t))


def assert_png(path, min_bytes):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes


def test_draw_heads_png(tmp_path):
    draw_heads(maps(), WORDS, [0, "2-1"], tmp_path / "heads.png", num_heads=2)
    assert_png(tmp_path / "heads.png", 5000)
    with pytest.raises(ValueError):
        draw_heads(maps(), WORDS, ["2-1"], tmp_path / "x.png")  # "L-H" needs num_heads
    with pytest.raises(ValueError):
        draw_heads(maps(), WORDS[:3], [0], tmp_path / "x.png")  # 3 words do not fit T = 6


def test_draw_heatmap_png(tmp_path):
    draw_heatmap(maps(), ["[CLS]", *WORDS, "[SEP]"], 3, tmp_path / "heat.png")
    assert_png(tmp_path / "heat.png", 5000)


def read_page(tmp_path, a):
    write_attention_html(a, WORDS, 2, 2, tmp_path / "view.html")
    return (tmp_path / "view.html").read_text(encoding="utf-8")


def page_data(page):
    m = re.search(
        r'<script id="attention-data" type="application/json">(.*?)</script>', page, re.S
    )
    return json.loads(m.group(1))


def test_html_is_self_contained_and_holds_the_data(tmp_path):
    a = maps()
    page = read_page(tmp_path, a)
    assert not re.search(r"https?://", page)
    assert "src=" not in page and "<link" not in page
    assert page.count("</script>") == 2  # the hostile token was escaped
    assert '<select id="layer">' in page and '<select id="head">' in page
    assert '<svg id="view"' in page
    data = page_data(page)
    assert data["tokens"] == ["[CLS]", *WORDS, "[SEP]"]
    assert (data["num_layers"], data["num_heads"]) == (2, 2)
    np.testing.assert_array_equal(np.array(data["attn"]), np.round(a, 3))
    lines = re.findall(r'<line data-i="(\d+)" data-j="(\d+)"[^>]*stroke-opacity="([^"]+)"', page)
    assert len(lines) == 36
    # before any script runs, the svg shows head 1-1
    assert all(float(o) == round(a[0, int(i), int(j)], 3) for i, j, o in lines)


NODE_HARNESS = """
const fs = require("fs");
const page = fs.readFileSync(process.argv[2], "utf8");
const blob = page.split('type="application/json">')[1].split("</script>")[0];
const script = page.match(/<script>([\\s\\S]*?)<\\/script>/)[1];
const lines = [...page.matchAll(/<line data-i="(\\d+)" data-j="(\\d+)"/g)].map(m => {
  const attrs = {"data-i": m[1], "data-j": m[2]};
  return {getAttribute: k => attrs[k], setAttribute: (k, v) => { attrs[k] = v; }, attrs};
});
function select(value) {
  return {value, listeners: [], addEventListener(type, f) { this.listeners.push(f); },
          fire() { this.listeners.forEach(f => f()); }};
}
const ui = {layer: select("1"), head: select("1")};
global.document = {
  body: {dataset: {}},
  getElementById: id => id === "attention-data" ? {textContent: blob}
    : id === "view" ? {querySelectorAll: () => lines} : ui[id],
};
eval(script);
const snap = () => ({rendered: document.body.dataset.rendered,
                     opacity: lines.map(l => Number(l.attrs["stroke-opacity"]))});
const out = [snap()];
ui.layer.value = "2"; ui.layer.fire(); out.push(snap());
ui.head.value = "2"; ui.head.fire(); out.push(snap());
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the inline script")
def test_html_script_redraws_on_selection(tmp_path):
    a = maps()
    read_page(tmp_path, a)
    harness = tmp_path / "harness.js"
    harness.write_text(NODE_HARNESS)
    proc = subprocess.run(
        ["node", str(harness), str(tmp_path / "view.html")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    snaps = json.loads(proc.stdout)
    assert [s["rendered"] for s in snaps] == ["1-1", "2-1", "2-2"]
    for snap, k in zip(snaps, (0, 2, 3)):  # layer-major: "2-1" is flat head 2
        np.testing.assert_allclose(snap["opacity"], np.round(a[k], 3).ravel())
