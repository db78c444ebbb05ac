"""The attention viewer's page in a real browser: headless Chromium, no extra Python packages.

A copy of the page gets a driver script appended after the viewer's own script. The driver
changes the selects (dispatching ``change`` events as a user would), snapshots every line's
``stroke-opacity`` and ``body.dataset.rendered`` after each change, and writes the snapshots as
JSON into a ``<pre id="probe-result">``. ``chromium --headless --dump-dom`` prints the DOM after
the scripts ran, and Python parses it.
"""

import html
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from probing.analysis.view import write_attention_html

CHROMIUM = Path("/usr/bin/chromium")
WORDS = ["the", "dog", "barked"]  # T = 5 with [CLS] and [SEP]
TOKENS = ["[CLS]", *WORDS, "[SEP]"]
T1, T2 = 1 / 3, 2 / 3  # shown as 0.333 / 0.667 after rounding to 3 decimals

# four hand-written heads (layer-major: 1-1, 1-2, 2-1, 2-2), rows FROM, columns TO
MAPS = np.array(
    [
        [  # 1-1: everything on [CLS]
            [1, 0, 0, 0, 0],
            [1, 0, 0, 0, 0],
            [1, 0, 0, 0, 0],
            [1, 0, 0, 0, 0],
            [1, 0, 0, 0, 0],
        ],
        [  # 1-2: two thirds on [SEP], one third on self
            [T1, 0, 0, 0, T2],
            [0, T1, 0, 0, T2],
            [0, 0, T1, 0, T2],
            [0, 0, 0, T1, T2],
            [0, 0, 0, 0, 1],
        ],
        [  # 2-1: previous token
            [1, 0, 0, 0, 0],
            [1, 0, 0, 0, 0],
            [0, 0.75, 0.25, 0, 0],
            [0, 0, 0.9, 0.1, 0],
            [0, 0, 0, 0.5, 0.5],
        ],
        [  # 2-2: next token
            [0.2, 0.8, 0, 0, 0],
            [0, 0, 1, 0, 0],
            [0, 0, 0, 1, 0],
            [0, 0, 0, 0, 1],
            [0, 0, 0, 0, 1],
        ],
    ],
    dtype=float,
)

DRIVER = """
<script>
(function () {
  function snap() {
    var lines = document.getElementById("view").querySelectorAll("line");
    var opacity = [];
    for (var n = 0; n < lines.length; n++) {
      opacity.push([Number(lines[n].getAttribute("data-i")),
                    Number(lines[n].getAttribute("data-j")),
                    Number(lines[n].getAttribute("stroke-opacity"))]);
    }
    return {rendered: document.body.dataset.rendered || null, opacity: opacity};
  }
  function choose(id, value) {
    var select = document.getElementById(id);
    select.value = value;
    select.dispatchEvent(new Event("change", {bubbles: true}));
  }
  var out = [snap()];
  choose("layer", "2"); out.push(snap());
  choose("head", "2"); out.push(snap());
  choose("layer", "1"); out.push(snap());
  var pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


@pytest.fixture
def chromium():
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed: apt-get install chromium")
    return str(CHROMIUM)


def dump_dom(chromium, page: Path, profile: Path) -> str:
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


def as_matrix(snapshot) -> np.ndarray:
    m = np.full((5, 5), np.nan)
    for i, j, o in snapshot["opacity"]:
        m[int(i), int(j)] = o
    return m


def test_viewer_redraws_in_chromium(chromium, tmp_path):
    np.testing.assert_allclose(MAPS.sum(-1), 1.0)
    viewer = tmp_path / "view.html"
    write_attention_html(MAPS, TOKENS, 2, 2, viewer)
    page = viewer.read_text(encoding="utf-8")
    assert page.rstrip().endswith("</body></html>")
    driven = tmp_path / "driven.html"
    driven.write_text(page.replace("</body></html>", DRIVER + "</body></html>"), encoding="utf-8")

    dom = dump_dom(chromium, driven, tmp_path / "profile")
    m = re.search(r'<pre id="probe-result">(.*?)</pre>', dom, re.S)
    assert m, f"the driver script left no result; DOM tail: {dom[-1500:]}"
    snaps = json.loads(html.unescape(m.group(1)))

    # the viewer's own script drew 1-1 on load; then 2-1, 2-2, 1-2 after each change event
    assert [s["rendered"] for s in snaps] == ["1-1", "2-1", "2-2", "1-2"]
    flat = [0, 2, 3, 1]  # layer-major flat index of each selected head
    shown = [as_matrix(s) for s in snaps]
    for k, got in zip(flat, shown):
        assert len(snaps[0]["opacity"]) == 25
        np.testing.assert_allclose(got, np.round(MAPS[k], 3), atol=1e-9)
    for before, after in zip(shown, shown[1:]):
        assert not np.allclose(before, after)  # every switch changed the drawing
    assert shown[3][0, 4] == 0.667 and shown[3][0, 0] == 0.333  # rounded to 3 decimals

    # the serialized DOM itself holds the last drawing and the rendered marker
    assert re.search(r'<body[^>]*data-rendered="1-2"', dom)
    lines = re.findall(r'<line data-i="(\d+)" data-j="(\d+)"[^>]*stroke-opacity="([^"]+)"', dom)
    assert len(lines) == 25
    final = np.full((5, 5), np.nan)
    for i, j, o in lines:
        final[int(i), int(j)] = float(o)
    np.testing.assert_allclose(final, np.round(MAPS[1], 3), atol=1e-9)
    assert all(t in dom for t in TOKENS)
