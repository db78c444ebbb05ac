"""The explorer in a real browser: headless Chromium driven through the DevTools protocol
(:mod:`probing.browser`, real mouse events), on the hand-written models of ``conftest.py``.

One browser for the module; each test opens the two-model page (alpha 2 x 2 with [CLS]/[SEP], beta
3 x 2 without special tokens) in a fresh tab. Expected arcs are the hand-written maps rounded to
1/255; expected statistics are counted by hand in the comments.
"""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from probing.analysis.explorer import READY, RESTAURANT, explorer_page, screenshot_panels, write_explorer
from probing.analysis.surface import surface_stats
from probing.browser import Chromium, find_chromium

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="no Chromium: `make browser` installs Debian's chromium")

VIRIDIS_TOP = "rgb(253,231,37)"  # the colour of 1.0
ARCS = """[...document.querySelectorAll('#sentence-svg line.arc')].filter(e => e.style.display !== 'none')
  .map(e => [e.dataset.head, +e.dataset.i, +e.dataset.j, +e.getAttribute('stroke-opacity'),
             e.getAttribute('stroke')])"""


def cell(layer, head, model=0, where="#headmap"):
    return f'{where} rect.cell[data-model="{model}"][data-layer="{layer}"][data-head="{head}"]'


@pytest.fixture(scope="module")
def browser():
    with Chromium() as b:
        yield b


@pytest.fixture(scope="module")
def pages(tmp_path_factory, hand):
    folder = tmp_path_factory.mktemp("explorer")
    (folder / "coarse.html").write_text(explorer_page(hand.models[:1], steps=(127,))[0], encoding="utf-8")
    return {"one": write_explorer(hand.models[:1], folder / "one.html"),
            "two": write_explorer(hand.models, folder / "two.html"), "coarse": folder / "coarse.html"}


@pytest.fixture
def page(browser, pages):
    tab = browser.page()
    tab.goto(pages["two"].as_uri(), READY)
    yield tab
    errors, outside = tab.console_errors(), tab.network_requests()
    tab.close()
    assert errors == [] and outside == []


def arcs(page):
    return page.evaluate(ARCS)


def expected_arcs(maps: np.ndarray, head: str) -> set:
    """The nonzero entries of one head's (T, T) map rounded as the page stores it."""
    q = np.rint(maps * 255) / 255
    return {(head, int(i), int(j), round(float(q[i, j]), 4)) for i, j in zip(*np.nonzero(q))}


def test_clicking_a_head_cell_changes_the_arcs(page, hand):
    # the restaurant sentence is always sampled, and first
    assert page.evaluate("explorer.data.models[0].sentences[0].words.join(' ')") == RESTAURANT
    maps = hand.rule_a(hand.sentences[1], hand.models[0].layout)  # T = 14
    page.click(cell(1, 1))
    drawn = arcs(page)
    assert {tuple(a[:4]) for a in drawn} == expected_arcs(maps[0], "1-1") == {("1-1", i, 0, 1.0) for i in range(14)}
    page.click(cell(2, 2))
    drawn = arcs(page)
    assert {tuple(a[:4]) for a in drawn} == expected_arcs(maps[3], "2-2")
    # "food" (token 2) on its gold head "fresh" (token 5): 0.75 stored as 191/255
    assert ("2-2", 2, 5, 0.749) in {tuple(a[:4]) for a in drawn}
    page.click(cell(1, 2), shift=True)  # added: two heads, two colours
    drawn = arcs(page)
    assert {a[0] for a in drawn} == {"2-2", "1-2"}
    assert len({a[4] for a in drawn}) == 2
    assert {tuple(a[:4]) for a in drawn if a[0] == "1-2"} == expected_arcs(maps[1], "1-2")
    assert page.evaluate("explorer.state.heads") == [3, 1]
    # each selected cell is outlined in its arcs' colour
    outlines = page.evaluate("[...document.querySelectorAll('#headmap rect.cell.selected')].map("
                             "e => [e.dataset.layer + '-' + e.dataset.head, getComputedStyle(e).stroke])")
    colour = {a[0]: a[4] for a in drawn}

    def rgb(hex_colour):
        return "rgb({}, {}, {})".format(*(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)))

    assert sorted(outlines) == sorted([name, rgb(colour[name])] for name in ("1-2", "2-2"))


def test_another_statistic_recolours_the_grid(page, hand):
    def grid():
        return page.evaluate("""Object.fromEntries([...document.querySelectorAll('#headmap rect.cell')]
          .map(e => [e.dataset.layer + '-' + e.dataset.head, [e.dataset.value, e.getAttribute('fill')]]))""")

    before = grid()
    page.evaluate("(() => { const s = document.getElementById('stat'); s.value = 'prev';"
                  " s.dispatchEvent(new Event('change')); })()")
    after = grid()
    # previous-token share over the rows that have one: 4 + 13 + 4 = 21 rows in the three sentences;
    # 1-2 always attends to the previous token; 1-1 (all on [CLS]) only from row 1: 3 of 21
    assert float(after["1-2"][0]) == 1.0 and after["1-2"][1] == VIRIDIS_TOP
    assert float(after["1-1"][0]) == pytest.approx(3 / 21, abs=1e-4)
    assert after["1-1"][1] != before["1-1"][1] and after["1-1"][1] != VIRIDIS_TOP
    # and it is surface_stats' number
    alpha = hand.models[0].quantities["attention"]
    assert alpha.stats["prev"][0, 0] == pytest.approx(3 / 21)
    legend = page.evaluate("[...document.querySelectorAll('#headmap .legend-value')].map(e => e.textContent)")
    assert legend[0] == "0.00" and legend[-1] == "1.00"
    # the norm-weighted maps swap 1-1 and 1-2
    page.evaluate("(() => { const s = document.getElementById('quantity'); s.value = 'norm';"
                  " s.dispatchEvent(new Event('change')); })()")
    assert float(grid()["1-1"][0]) == 1.0


def test_hovering_a_word_keeps_only_its_row_or_column(page):
    page.click(cell(1, 2))
    page.click(cell(2, 1), shift=True)
    assert len(arcs(page)) == 2 * 14
    page.hover('#sentence-svg text.tok.from[data-i="3"]')
    # row 3: the previous token (1-2) and the next one (2-1)
    assert sorted(tuple(a[:3]) for a in arcs(page)) == [("1-2", 3, 2), ("2-1", 3, 4)]
    page.hover('#sentence-svg text.tok.to[data-j="3"]')
    assert sorted(tuple(a[:3]) for a in arcs(page)) == [("1-2", 4, 3), ("2-1", 2, 3)]
    page.hover("h1")
    assert len(arcs(page)) == 2 * 14


def test_hovering_a_cell_shows_all_its_statistics(page):
    page.hover(cell(2, 2))
    info = page.evaluate("""[...document.querySelectorAll('#head-info tr')].map(
        r => [...r.children].map(c => c.textContent))""")
    rows = {r[0]: r[1:] for r in info}
    assert page.evaluate("document.querySelector('#head-info table').dataset.headName") == "2-2"
    assert rows["statistic"] == ["attention", "norm"]
    assert rows["behaviour cluster"] == ["other", "other"]
    # 2-2 points every word at its gold head: nsubj 3 of 3 dep->head, the best head of the row
    assert rows["nsubj"][0].startswith("1.00 /") and rows["nsubj"][0].endswith("★")


def test_a_relation_selects_its_best_head_and_examples(page):
    page.click('#relation-table tr[data-relation="nsubj"]')
    # nsubj: dog->barked and cat->sat are next words (2-1), food->fresh is not: 2-2 gets all 3
    assert page.evaluate("explorer.state.heads") == [3]
    assert page.evaluate("explorer.state.stat") == "rel:nsubj"
    right = page.evaluate("[...document.querySelectorAll('#examples-right li')].map(e => e.textContent)")
    assert sorted(right) == sorted(["1/1" + " ".join(s) for s in (["the", "dog", "barked"], RESTAURANT.split(),
                                                                  ["a", "cat", "sat"])])
    assert page.evaluate("document.querySelectorAll('#examples-wrong li').length") == 0
    marks = page.evaluate("[...document.querySelectorAll('#sentence-svg text.mark')].map(e => e.dataset.right)")
    assert marks == ["1"]
    page.click(cell(2, 1))  # the next-token head gets nsubj wrong in the restaurant sentence
    wrong = page.evaluate("[...document.querySelectorAll('#examples-wrong li')].map(e => e.textContent)")
    assert wrong == ["1/1" + RESTAURANT]
    page.type("#search", "cat")
    assert page.evaluate("[...document.querySelectorAll('#sentence-list li')].map(e => e.textContent)") == [
        "a cat sat"]


def test_model_view_thumbnails_select_heads(page):
    assert page.evaluate("document.querySelectorAll('#model-view .thumb').length") == 4
    page.click('#model-view .thumb[data-layer="1"][data-head="2"]')
    page.click('#model-view .thumb[data-layer="2"][data-head="1"]', shift=True)
    assert page.evaluate("explorer.state.heads") == [1, 2]
    assert page.evaluate("[...document.querySelectorAll('#model-view .thumb.selected')].map("
                         "e => e.dataset.layer + '-' + e.dataset.head)") == ["1-2", "2-1"]


def test_compare_shows_both_models_aligned_by_depth(page):
    maps = page.evaluate("[...document.querySelectorAll('#compare svg.headmap')].map(e => e.dataset.model)")
    assert maps == ["0", "1"]
    assert page.evaluate(f"document.querySelectorAll('{cell(2, 2, 0, '#compare')}').length") == 1

    def span(model, layer):
        return page.evaluate(f"""(() => {{ const e = document.querySelector('{cell(layer, 1, model, "#compare")}');
            const y = +e.getAttribute('y'); return [y, y + +e.getAttribute('height')]; }})()""")

    # alpha's 2 layers and beta's 3 fill the same height: both start and end together, and
    # beta's layer 2 of 3 straddles alpha's boundary between layers 1 and 2
    assert span(0, 1)[0] == span(1, 1)[0] and span(0, 2)[1] == pytest.approx(span(1, 3)[1])
    assert span(1, 2)[0] < span(0, 1)[1] < span(1, 2)[1]
    page.click(cell(3, 2, 1, "#compare"))  # selects beta's head 3-2 in the main views
    assert page.evaluate("[explorer.state.m, explorer.state.heads]") == [1, [5]]
    assert page.evaluate("document.querySelector('#sentence-svg text.tok.from').textContent") == "The"


def test_export_svg_and_png(page, tmp_path):
    page.allow_downloads(tmp_path)
    page.click(cell(2, 2))
    svg = page.download('button.export[data-panel="sentence"][data-format="svg"]', tmp_path)
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    lines = [e for e in root.iter(f"{ns}line") if e.get("class") == "arc"]
    assert len(lines) == len(arcs(page)) == 2 * 12 + 2  # every word twice (head, itself), [CLS] and [SEP] once
    assert {e.get("data-head") for e in lines} == {"2-2"}
    assert [e.text for e in root.iter(f"{ns}text") if "tok" in (e.get("class") or "")][:2] == ["[CLS]", "[CLS]"]
    heads = ET.parse(page.download('button.export[data-panel="heads"][data-format="svg"]', tmp_path)).getroot()
    assert len([e for e in heads.iter(f"{ns}rect") if e.get("class", "").startswith("cell")]) == 4
    both = ET.parse(page.download('button.export[data-panel="compare"][data-format="svg"]', tmp_path)).getroot()
    assert len([e for e in both.iter(f"{ns}rect") if e.get("class", "").startswith("cell")]) == 4 + 6
    png = page.download('button.export[data-panel="model"][data-format="png"]', tmp_path)
    assert png.suffix == ".png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_model_page_loads_fast_without_errors_or_network(browser, pages, hand):
    tab = browser.page()
    seconds = tab.goto(pages["one"].as_uri(), READY)
    assert seconds < 2
    assert tab.evaluate("document.getElementById('panel-compare').hidden") is True
    for selector in (cell(1, 1), cell(2, 2), '#relation-table tr[data-relation="det"]',
                     '#model-view .thumb[data-layer="1"][data-head="2"]', '#sentence-list li[data-index="1"]'):
        tab.click(selector)
    tab.hover('#sentence-svg text.tok.from[data-i="1"]')
    assert tab.console_errors() == []
    assert tab.network_requests() == []
    assert tab.requests() == [pages["one"].as_uri()]
    # surface_stats' "start" of alpha over the three sentences, as the page shows it
    stats = surface_stats(((hand.rule_a(s, hand.models[0].layout), s) for s in hand.sentences), 2, 2,
                          hand.models[0].layout)
    shown = tab.evaluate("explorer.data.models[0].quantities.attention.stats.start")
    np.testing.assert_allclose(shown, np.round(stats["start"].ravel(), 4))
    tab.close()


def test_coarser_maps_are_drawn_in_their_own_steps(browser, pages, hand):
    tab = browser.page()
    tab.goto(pages["coarse"].as_uri(), READY)
    tab.click(cell(2, 2))
    # 0.75 in steps of 1/127: 95/127
    assert ("2-2", 2, 5, 0.748) in {tuple(a[:4]) for a in arcs(tab)}
    assert "multiples of 1/127" in tab.evaluate("document.getElementById('notes').textContent")
    assert tab.console_errors() == []
    tab.close()


def test_the_checks_can_fail(browser, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script>')
    tab = browser.page()
    tab.goto(bad.as_uri())
    assert any("boom" in e for e in tab.console_errors())
    assert tab.network_requests() == ["http://127.0.0.1:9/x.png"]
    tab.close()


def test_screenshot_of_every_panel(browser, pages, tmp_path):
    shots = screenshot_panels(pages["two"], tmp_path / "shots", browser=browser)
    assert [p.name for p in shots] == [f"two-{p}.png" for p in
                                       ("heads", "sentence", "sentences", "relations", "model", "compare")]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 1000 for p in shots)


def test_a_screenshot_is_scaled_down_to_its_pixel_budget(browser, pages, tmp_path):
    import struct

    def size(path):  # width and height from the PNG's IHDR chunk
        return struct.unpack(">II", path.read_bytes()[16:24])

    page = browser.page()
    page.goto(pages["two"].resolve().as_uri(), READY)
    full = size(page.screenshot(tmp_path / "full.png", "#panel-model"))
    budget = full[0] * full[1] // 4
    small = size(page.screenshot(tmp_path / "small.png", "#panel-model", max_pixels=budget))
    assert small[0] * small[1] <= budget * 1.05 and small[0] < full[0]  # rounding to whole pixels
    page.close()
