import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from probing.analysis._common import token_labels
from probing.analysis.view import draw_heads, draw_heatmap, pick_heads, write_attention_html
from probing.attention.layout import Layout

WORDS = ["the", "dog", "</script><b>", "."]  # a hostile token must not break the page
TOKENS = token_labels(WORDS)  # [CLS] ... [SEP]


def maps(num_layers=2, num_heads=2, t=6, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(t), size=(num_layers * num_heads, t))


def test_draw_heads_panels():
    fig = draw_heads(maps(), TOKENS, [0, "2-1"], num_heads=2)
    assert [ax.get_title() for ax in fig.axes] == ["1-1", "2-1"]
    assert [t.get_text() for t in fig.axes[0].texts[::2]] == TOKENS  # left column, top to bottom
    with pytest.raises(ValueError):
        draw_heads(maps(), TOKENS, ["2-1"])  # "L-H" needs num_heads
    with pytest.raises(ValueError):
        draw_heads(maps(), WORDS, [0])  # 4 labels do not fit T = 6


def test_draw_heatmap_labels():
    fig = draw_heatmap(maps(), TOKENS, 3)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == TOKENS
    assert fig.axes[0].get_title() == "head 3"


def test_token_labels_follow_the_layout():
    assert token_labels(["a"], Layout(True, False), "<bos>", None) == ["<bos>", "a"]
    assert token_labels(["a"], Layout(False, False)) == ["a"]
    assert token_labels(["a"], Layout(False, True), None, "</s>") == ["a", "</s>"]


def test_pick_heads_per_layout():
    # K=4 heads over "x y z": previous word, next word, self, and the special token
    for layout in (Layout(True, True), Layout(False, False)):
        t = layout.num_tokens(3)
        a = np.zeros((4, t, t))
        a[0, np.arange(1, t), np.arange(t - 1)] = 1.0
        a[1, np.arange(t - 1), np.arange(1, t)] = 1.0
        a[2, np.arange(t), np.arange(t)] = 1.0
        a[3, :, t - 1 if layout.end else 0] = 1.0
        # no special token: the special-token head is not asked for
        expected = ["1-1", "1-2", "1-4", "1-3"] if layout.end else ["1-1", "1-2", "1-3"]
        assert pick_heads(a, layout, 4) == expected


def read_page(tmp_path, a):
    write_attention_html(a, TOKENS, 2, 2, tmp_path / "view.html")
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
