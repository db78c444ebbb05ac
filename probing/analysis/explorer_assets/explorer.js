// The attention explorer's page script (probing/analysis/explorer.py writes it inline).
// Data: #explorer-data (JSON: statistics, sample sentences, Table 1/2 rows) and one
// #maps-<model>-<quantity> per model and quantity (gzipped uint8 maps, base64). Heads are flat
// layer-major indices k inside the script and "layer-head" (1-based) on the page.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("explorer-data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const HEAD_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22"];
  const BEHAVIOURS = { other: "#cfcfcf", next: "#ff7f0e", prev: "#2ca02c", broad: "#d62728", cls: "#9467bd",
    sep: "#8c564b", punct: "#e377c2" };
  const VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
    [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
  const MISSING = "#e8e8e8";
  const SURFACE = [["first", "share to the first token (the sink)"], ["start", "share to START"],
    ["end", "share to END"], ["punct", "share to . and ,"], ["prev", "share to the previous token"],
    ["next", "share to the next token"], ["self", "share to itself"], ["entropy", "entropy (nats)"]];
  const TYPES = ["All", "Pronoun", "Proper", "Nominal"];

  const S = { m: 0, q: null, stat: null, heads: [], sent: 0, rel: "All", search: "", hover: null };
  const maps = [];  // maps[m][q]: Uint8Array, sentences one after the other, (K, T, T) each
  const bits = [];  // bits[m][q]: Uint8Array of Table 1's packed per-word results
  const mapStart = [];  // mapStart[m][s]: offset of sentence s in maps[m][q]
  const bitStart = [];  // bitStart[m][s]: offset of sentence s in bits[m][q], in bits
  let thumbsKey = null;

  // --- small helpers ---------------------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function h(tag, attrs, parent, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function s(tag, attrs, parent, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v, d) { return v === null || v === undefined ? "n/a" : Number(v).toFixed(d === undefined ? 3 : d); }
  function model(m) { return D.models[m === undefined ? S.m : m]; }
  function numHeads(m) { const md = model(m); return md.L * md.H; }
  function headName(k, m) { const H = model(m).H; return `${Math.floor(k / H) + 1}-${(k % H) + 1}`; }
  function headIndex(name, m) { const [l, hh] = name.split("-").map(Number); return (l - 1) * model(m).H + hh - 1; }
  function quantityOf(m) { const qs = Object.keys(model(m).quantities); return qs.includes(S.q) ? S.q : qs[0]; }
  function qdata(m, q) { return model(m).quantities[q === undefined ? quantityOf(m) : q]; }
  function tokens(m, i) {
    const md = model(m), sent = md.sentences[i];
    return [...(md.layout.start ? [md.special[0] || "<start>"] : []), ...sent.words,
      ...(md.layout.end ? [md.special[1] || "<end>"] : [])];
  }
  function firstWord(m) { return model(m).layout.start ? 1 : 0; }
  function weight(m, q, i, k, a, b) {  // attention FROM token a TO token b in head k
    const T = model(m).sentences[i].T;
    return maps[m][q][mapStart[m][i] + (k * T + a) * T + b] / D.levels;
  }
  function correct(m, q, i, dir, k, w) {  // Table 1: word w of sentence i right in direction dir, head k
    const n = model(m).sentences[i].words.length, b = bitStart[m][i] + (dir * numHeads(m) + k) * n + w;
    return (bits[m][q][b >> 3] >> (7 - (b & 7))) & 1;
  }
  function colourScale(t) {
    t = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(t), VIRIDIS.length - 2), f = t - i;
    const c = VIRIDIS[i].map((v, j) => Math.round(v + f * (VIRIDIS[i + 1][j] - v)));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }
  function textWidth(text, px) {
    const c = textWidth.ctx || (textWidth.ctx = document.createElement("canvas").getContext("2d"));
    c.font = `${px}px system-ui, "DejaVu Sans", sans-serif`;
    return c.measureText(text).width;
  }

  // --- statistics ------------------------------------------------------------------------------
  function statDefs(m, q) {
    const md = model(m), qd = qdata(m, q), out = [];
    const names = { START: md.special[0] || "the start token", END: md.special[1] || "the end token" };
    for (const [key, label] of SURFACE) {
      if (!qd.stats[key]) continue;
      out.push({ key, kind: key === "entropy" ? "entropy" : "share", values: qd.stats[key],
        label: label.replace(/START|END/, (x) => names[x]) });
    }
    out.push({ key: "behaviour", kind: "cat", values: qd.behaviour, label: "behaviour cluster (Fig. 6 rules)" });
    if (qd.coref) {
      out.push({ key: "coref", kind: "share", values: qd.coref.acc[0],
        label: `coreference accuracy (${qd.coref.corpus} ${qd.coref.split})` });
    }
    for (const r of qd.relations) {
      out.push({ key: "rel:" + r.relation, kind: "share", label: `${r.relation} accuracy (better direction)`,
        values: r.acc[0].map((v, k) => Math.max(v, r.acc[1][k])) });
    }
    return out;
  }
  function statDef(m, key) { return statDefs(m, quantityOf(m)).find((d) => d.key === key) || null; }
  function entropyMax() {
    let top = 0;
    D.models.forEach((md, m) => { const e = qdata(m).stats.entropy; if (e) top = Math.max(top, ...e); });
    return top || 1;
  }
  function cellColour(def, k) {
    if (!def) return MISSING;
    const v = def.values[k];
    if (v === null || v === undefined) return MISSING;
    if (def.kind === "cat") return BEHAVIOURS[v] || MISSING;
    return colourScale(def.kind === "entropy" ? v / entropyMax() : v);
  }
  function relationRow(m, rel) { return qdata(m).relations.find((r) => r.relation === rel) || null; }
  function direction(m, rel, k) {  // the head's better direction for the relation (Table 1's choice)
    const r = relationRow(m, rel);
    return r && r.acc[1][k] > r.acc[0][k] ? 1 : 0;
  }

  // --- selection -------------------------------------------------------------------------------
  function select(k, add) {
    if (add) {
      const at = S.heads.indexOf(k);
      if (at >= 0 && S.heads.length > 1) S.heads.splice(at, 1); else if (at < 0) S.heads.push(k);
    } else {
      S.heads = [k];
    }
    render();
  }
  function headColour(k) { const i = S.heads.indexOf(k); return HEAD_COLOURS[(i < 0 ? 0 : i) % HEAD_COLOURS.length]; }

  // --- head map ---------------------------------------------------------------------------------
  function headMap(m, opts) {
    const md = model(m), def = statDef(m, S.stat), compare = opts.compare;
    const cw = compare ? Math.max(8, Math.min(22, 220 / md.H)) : Math.max(12, Math.min(28, 420 / md.H));
    const ch = compare ? opts.height / md.L : Math.max(8, Math.min(22, 440 / md.L));
    const left = compare ? 62 : 34, top = compare ? 36 : 24;
    const legendWidth = Math.max(cw * md.H, 220);
    const width = left + (compare ? cw * md.H : Math.max(cw * md.H, legendWidth + 30)) + 8;
    const height = top + ch * md.L + (compare ? 8 : 62);
    const svg = s("svg", { xmlns: NS, width, height, viewBox: `0 0 ${width} ${height}`, "data-model": m,
      class: "headmap" });
    if (compare) s("text", { x: left, y: 13, "font-size": 13, "font-weight": 700 }, svg, md.name);
    s("text", { x: left, y: top - 6, "font-size": 10, fill: "#555" }, svg, "head →");
    const step = Math.ceil(14 / ch);
    for (let l = 0; l < md.L; l += step) {
      s("text", { x: left - 4, y: top + (l + 0.5) * ch + 3, "font-size": 10, "text-anchor": "end", fill: "#555" },
        svg, String(l + 1));
    }
    if (compare) {  // the relative-depth ruler the models share
      for (const d of [0, 0.25, 0.5, 0.75, 1]) {
        const y = top + d * opts.height;
        s("line", { x1: 2, x2: 18, y1: y, y2: y, stroke: "#999" }, svg);
        s("text", { x: 20, y: y + 3, "font-size": 9, fill: "#999" }, svg, d.toFixed(2));
      }
    }
    for (let l = 0; l < md.L; l++) {
      for (let hh = 0; hh < md.H; hh++) {
        const k = l * md.H + hh, v = def ? def.values[k] : null;
        const cell = s("rect", { class: "cell", x: left + hh * cw, y: top + l * ch, width: cw, height: ch,
          fill: cellColour(def, k), "data-layer": l + 1, "data-head": hh + 1, "data-model": m,
          "data-value": v === null || v === undefined ? "" : v }, svg);
        s("title", {}, cell, `${md.name} ${l + 1}-${hh + 1}: ${def ? def.label : S.stat} = ${
          typeof v === "number" ? fmt(v) : v || "n/a"}`);
        if (m === S.m && S.heads.includes(k)) {
          cell.classList.add("selected");
          cell.style.stroke = headColour(k);  // inline: the stylesheet's white outline would win over an attribute
        }
        cell.addEventListener("click", (ev) => {
          if (m !== S.m) { S.m = m; S.heads = []; clampSentence(); }
          select(k, ev.shiftKey && m === S.m && S.heads.length > 0);
        });
        cell.addEventListener("mouseenter", () => headInfo(m, k));
        cell.addEventListener("mouseleave", () => headInfo(S.m, S.heads[0]));
      }
    }
    if (!compare) legend(svg, def, left, top + ch * md.L + 14, legendWidth);
    return svg;
  }

  function legend(svg, def, x, y, width) {
    if (!def) {
      s("text", { x, y: y + 12, "font-size": 11 }, svg, `${S.stat}: not available for this model`);
      return;
    }
    s("text", { x, y: y + 9, "font-size": 11, class: "legend-title" }, svg, def.label);
    if (def.kind === "cat") {
      let cx = x;
      for (const [name, colour] of Object.entries(BEHAVIOURS)) {
        const n = def.values.filter((v) => v === name).length;
        if (!n) continue;
        s("rect", { x: cx, y: y + 16, width: 10, height: 10, fill: colour }, svg);
        const label = `${name} (${n})`;
        s("text", { x: cx + 13, y: y + 25, "font-size": 10, class: "legend-value" }, svg, label);
        cx += 22 + textWidth(label, 10);
      }
      return;
    }
    const top = def.kind === "entropy" ? entropyMax() : 1;
    const id = "grad-" + Math.random().toString(36).slice(2);
    const grad = s("linearGradient", { id }, s("defs", {}, svg));
    VIRIDIS.forEach((c, i) => s("stop", { offset: `${(100 * i) / (VIRIDIS.length - 1)}%`,
      "stop-color": `rgb(${c.join(",")})` }, grad));
    s("rect", { x, y: y + 15, width, height: 10, fill: `url(#${id})` }, svg);
    for (const t of [0, 0.25, 0.5, 0.75, 1]) {
      s("line", { x1: x + t * width, x2: x + t * width, y1: y + 25, y2: y + 29, stroke: "#333" }, svg);
      s("text", { x: x + t * width, y: y + 40, "font-size": 10, "text-anchor": "middle", class: "legend-value" },
        svg, fmt(t * top, 2));
    }
    if (def.values.some((v) => v === null)) {
      s("rect", { x: x + width + 8, y: y + 15, width: 10, height: 10, fill: MISSING }, svg);
      s("text", { x: x + width + 21, y: y + 24, "font-size": 10 }, svg, "n/a");
    }
  }

  function headInfo(m, k) {
    const box = $("head-info");
    box.textContent = "";
    if (k === undefined) return;
    const md = model(m), qs = Object.keys(md.quantities);
    h("h3", {}, box, `Head ${headName(k, m)} of ${md.name}`);
    const table = h("table", { "data-head-name": headName(k, m) }, box);
    const head = h("tr", {}, table);
    h("th", {}, head, "statistic");
    qs.forEach((q) => h("th", {}, head, q));
    const row = (label, f) => {
      const tr = h("tr", {}, table);
      h("td", {}, tr, label);
      qs.forEach((q) => h("td", {}, tr, f(md.quantities[q])));
    };
    for (const [key, label] of SURFACE) {
      if (qs.some((q) => md.quantities[q].stats[key])) {
        row(label.replace("START", md.special[0] || "start").replace("END", md.special[1] || "end"),
          (qd) => fmt(qd.stats[key] ? qd.stats[key][k] : null));
      }
    }
    row("behaviour cluster", (qd) => qd.behaviour[k]);
    if (qs.some((q) => md.quantities[q].coref)) {
      TYPES.forEach((t, i) => row(`coreference: ${t}`, (qd) => (qd.coref ? fmt(qd.coref.acc[i][k]) : "n/a")));
    }
    const rels = qdata(m).relations;
    if (rels.length) {
      const tr = h("tr", {}, table);
      h("th", { colspan: qs.length + 1 }, tr, "Table 1 accuracy: dep→head / head→dep (★ best head)");
      for (const r of rels) {
        row(r.relation, (qd) => {
          const rr = qd.relations.find((x) => x.relation === r.relation);
          if (!rr) return "n/a";
          return `${fmt(rr.acc[0][k], 2)} / ${fmt(rr.acc[1][k], 2)}${rr.head === headName(k, m) ? " ★" : ""}`;
        });
      }
    }
  }

  function renderHeadMap() {
    const box = $("headmap-box");
    box.textContent = "";
    const svg = headMap(S.m, { compare: false });
    svg.id = "headmap";
    box.appendChild(svg);
  }

  // --- sentence view -----------------------------------------------------------------------------
  function renderSentence() {
    const box = $("sentence-box"), m = S.m, q = quantityOf(m), md = model(m), i = S.sent;
    box.textContent = "";
    if (!md.sentences.length) { box.textContent = "No sentence in the sample."; return; }
    const toks = tokens(m, i), T = toks.length, sent = md.sentences[i], n = sent.words.length;
    const f = firstWord(m), dy = 20, top = 24, tw = Math.max(...toks.map((t) => textWidth(t, 13)));
    const rw = sent.rels ? Math.max(...sent.rels.map((r) => textWidth(r, 10))) : 0;
    // columns: from-words, arcs, to-words, gold relation labels, right/wrong marks, gold tree
    const xL = 10 + tw, xR = xL + 190, xRel = xR + tw + 14, xMark = xRel + rw + 4, xG = xMark + 16;
    const span = sent.heads ? Math.max(1, ...sent.heads.map((hd, d) => (hd > 0 ? Math.abs(hd - 1 - d) : 0))) : 1;
    // a cubic arc with both controls r to the right reaches 0.75 r; predicted arcs may span the sentence
    const width = xG + 16 + 0.75 * (20 + 11 * Math.max(span, n - 1)), height = top + T * dy + 10;
    const svg = s("svg", { xmlns: NS, id: "sentence-svg", width, height, viewBox: `0 0 ${width} ${height}` }, box);
    const y = (t) => top + t * dy;
    s("text", { x: xL, y: 12, "font-size": 11, "text-anchor": "end", fill: "#555" }, svg, "from");
    s("text", { x: xR, y: 12, "font-size": 11, fill: "#555" }, svg, "to");
    s("text", { x: xG, y: 12, "font-size": 11, fill: "#555" }, svg, "gold tree");
    const arcs = s("g", { class: "arcs" }, svg);
    for (const k of S.heads) {
      const colour = headColour(k);
      for (let a = 0; a < T; a++) {
        for (let b = 0; b < T; b++) {
          const w = weight(m, q, i, k, a, b);
          if (w <= 0) continue;
          s("line", { class: "arc", x1: xL + 6, y1: y(a) - 4, x2: xR - 6, y2: y(b) - 4, stroke: colour,
            "stroke-width": 2, "stroke-opacity": w.toFixed(4), "data-head": headName(k, m), "data-i": a,
            "data-j": b }, arcs);
        }
      }
    }
    toks.forEach((t, a) => {
      for (const [side, x, anchor] of [["from", xL, "end"], ["to", xR, "start"]]) {
        const e = s("text", { class: `tok ${side}`, x, y: y(a), "text-anchor": anchor, [`data-${side === "from" ? "i" : "j"}`]: a },
          svg, t);
        e.addEventListener("mouseenter", () => { S.hover = { side, index: a }; applyHover(); });
        e.addEventListener("mouseleave", () => { S.hover = null; applyHover(); });
      }
    });
    const caption = $("sentence-caption");
    caption.textContent = `${md.name}, ${q}; heads ${S.heads.map((k) => headName(k, m)).join(", ") || "none"}`;
    if (!sent.heads) return;
    // the gold tree beside the words: one arc per dependent, bulging right, label at its tip
    const gold = s("g", { class: "gold" }, svg);
    sent.heads.forEach((hd, d) => {
      if (sent.rels) s("text", { x: xRel, y: y(f + d) - 1, "font-size": 10, fill: "#666", class: "rel" }, gold, sent.rels[d]);
      if (hd <= 0) return;  // ROOT: the label says so
      const a = y(f + d) - 4, b = y(f + hd - 1) - 4, r = 14 + 11 * Math.abs(hd - 1 - d);
      s("path", { class: "gold-arc", d: `M ${xG} ${a} C ${xG + r} ${a}, ${xG + r} ${b}, ${xG} ${b}`, fill: "none",
        stroke: "#444", "stroke-width": 1.2, "data-dep": d + 1, "data-gold-head": hd }, gold);
      s("circle", { cx: xG, cy: a, r: 2.2, fill: "#444" }, gold);
    });
    // the first selected head's prediction for each word of the chosen relation, right or wrong
    const k = S.heads[0];
    if (k === undefined || !sent.rels) return;
    const dir = direction(m, S.rel, k);
    let right = 0, total = 0;
    const marks = s("g", { class: "marks" }, svg);
    sent.rels.forEach((rel, d) => {
      if (S.rel !== "All" && rel !== S.rel) return;
      const ok = correct(m, q, i, dir, k, d);
      total += 1;
      right += ok;
      const p = predicted(m, q, i, k, d, dir);
      s("text", { class: `mark ${ok ? "right" : "wrong"}`, x: xMark, y: y(f + d), "font-size": 13,
        "data-word": d + 1, "data-right": ok }, marks, ok ? "✓" : "✗");
      if (p !== null && p !== d) {
        const a = y(f + d) - 4, b = y(f + p) - 4, r = 20 + 11 * Math.abs(p - d);
        s("path", { class: "pred-arc", d: `M ${xG} ${a} C ${xG + r} ${a}, ${xG + r} ${b}, ${xG} ${b}`, fill: "none",
          stroke: ok ? "#1a7f37" : "#c62828", "stroke-width": 1.5, "stroke-dasharray": "4 3" }, marks);
      }
    });
    caption.textContent += ` · ${S.rel}, head ${headName(k, m)} ${model(m).directions[dir]}: ${right} of ${total} right` +
      ` (✓/✗ by Table 1's rules; dashed: where the head points) · sentence ${sent.id}`;
  }

  function predicted(m, q, i, k, d, dir) {  // the word head k links to word d (display only)
    const f = firstWord(m), n = model(m).sentences[i].words.length;
    let best = null, top = 0;
    for (let w = 0; w < n; w++) {
      if (w === d) continue;
      const v = dir === 0 ? weight(m, q, i, k, f + d, f + w) : weight(m, q, i, k, f + w, f + d);
      if (v > top) { top = v; best = w; }
    }
    return best;
  }

  function applyHover() {
    const svg = $("sentence-svg");
    if (!svg) return;
    const hv = S.hover;
    svg.querySelectorAll("line.arc").forEach((e) => {
      const keep = !hv || Number(e.getAttribute(hv.side === "from" ? "data-i" : "data-j")) === hv.index;
      e.style.display = keep ? "" : "none";
    });
    svg.querySelectorAll("text.tok").forEach((e) => {
      const idx = Number(e.getAttribute(e.classList.contains("from") ? "data-i" : "data-j"));
      e.classList.toggle("hovered", !!hv && e.classList.contains(hv.side) && idx === hv.index);
    });
  }

  // --- sentences and examples --------------------------------------------------------------------
  function clampSentence() { if (S.sent >= model().sentences.length) S.sent = 0; }
  function sentenceItem(list, i, prefix) {
    const li = h("li", { "data-index": i }, list);
    if (prefix) h("span", { class: "score" }, li, prefix);
    li.appendChild(document.createTextNode(model().sentences[i].words.join(" ")));
    if (i === S.sent) li.classList.add("current");
    li.addEventListener("click", () => { S.sent = i; render(); });
    return li;
  }
  function renderList() {
    const list = $("sentence-list"), terms = S.search.toLowerCase().split(/\s+/).filter(Boolean);
    list.textContent = "";
    const sents = model().sentences;
    let shown = 0;
    sents.forEach((sent, i) => {
      const words = sent.words.map((w) => w.toLowerCase());
      if (terms.every((t) => words.some((w) => w.includes(t)))) { sentenceItem(list, i); shown += 1; }
    });
    $("list-count").textContent = `${shown} of ${sents.length} sample sentences` +
      (terms.length ? ` with "${terms.join(" ")}"` : "");
  }
  function renderExamples() {
    const m = S.m, q = quantityOf(m), k = S.heads[0], right = $("examples-right"), wrong = $("examples-wrong");
    right.textContent = "";
    wrong.textContent = "";
    if (k === undefined) { $("examples-title").textContent = "Select a head for its examples"; return; }
    const dir = direction(m, S.rel, k), got = [];
    model(m).sentences.forEach((sent, i) => {
      if (!sent.rels) return;
      let ok = 0, n = 0;
      sent.rels.forEach((rel, d) => {
        if (S.rel === "All" || rel === S.rel) { n += 1; ok += correct(m, q, i, dir, k, d); }
      });
      if (n) got.push({ i, ok, n });
    });
    $("examples-title").textContent = `Head ${headName(k, m)}, ${S.rel} (${model(m).directions[dir]}): ` +
      `right in ${got.filter((g) => g.ok).length}, wrong in ${got.filter((g) => g.ok < g.n).length} sentences`;
    got.filter((g) => g.ok).sort((a, b) => b.ok - a.ok)
      .forEach((g) => sentenceItem(right, g.i, `${g.ok}/${g.n}`));
    got.filter((g) => g.ok < g.n).sort((a, b) => (b.n - b.ok) - (a.n - a.ok))
      .forEach((g) => sentenceItem(wrong, g.i, `${g.n - g.ok}/${g.n}`));
  }

  // --- relations -------------------------------------------------------------------------------
  function renderRelations() {
    const box = $("relations"), m = S.m, qd = qdata(m);
    box.textContent = "";
    if (qd.relations.length) {
      h("h3", {}, box, `Table 1: the best head per relation (${qd.num_sentences} sentences, ${model(m).rules.label_level} labels, head→dep rule ${model(m).rules.head_dep_rule})`);
      const table = h("table", { id: "relation-table" }, box);
      const head = h("tr", {}, table);
      ["relation", "count", "best head", "direction", "accuracy %", "offset", "baseline %"].forEach((c) => h("th", {}, head, c));
      for (const r of qd.relations) {
        const tr = h("tr", { "data-relation": r.relation }, table);
        if (r.relation === S.rel) tr.classList.add("current");
        [r.relation, r.count, r.head, r.direction, fmt(100 * r.accuracy, 1), r.baseline_offset,
          fmt(100 * r.baseline_accuracy, 1)].forEach((v) => h("td", {}, tr, String(v)));
        tr.addEventListener("click", () => chooseRelation(r.relation, true));
      }
    } else {
      h("p", { class: "hint" }, box, "No parsed sentences: no Table 1.");
    }
    if (qd.coref) {
      const c = qd.coref, best = headIndex(c.best_head, m);
      h("h3", {}, box, `Table 2: coreference on ${c.corpus} ${c.split} (${c.chunks} document chunks)`);
      const table = h("table", { id: "coref-table" }, box);
      const head = h("tr", {}, table);
      ["", ...TYPES].forEach((t) => h("th", {}, head, t));
      const rows = [[`head ${c.best_head}`, c.acc.map((a) => a[best]), "coref"], ["nearest mention", c.nearest],
        ["nearest with same head word", c.same_head], ["mentions", c.counts]];
      for (const [label, vals, key] of rows) {
        const tr = h("tr", key ? { "data-relation": key } : {}, table);
        h("td", {}, tr, label);
        vals.forEach((v) => h("td", {}, tr, label === "mentions" ? String(v) : fmt(100 * v, 1)));
        if (key) tr.addEventListener("click", () => { S.heads = [best]; S.stat = "coref"; render(); });
      }
    }
  }
  function chooseRelation(rel, pickHead) {
    S.rel = rel;
    if (pickHead) bestHeadOf(rel, true);
    render();
  }
  function bestHeadOf(rel, moveSentence) {  // select the relation's best head, colour the map by it
    const r = relationRow(S.m, rel);
    if (!r) return;
    const k = headIndex(r.head, S.m), q = quantityOf(S.m), dir = direction(S.m, rel, k);
    S.heads = [k];
    S.stat = "rel:" + rel;
    if (!moveSentence) return;
    // show a sentence where the head gets the relation right (else one that has it)
    const has = model().sentences.map((sent, i) => (sent.rels ? sent.rels.map((x, d) => (x === rel || rel === "All") ?
      correct(S.m, q, i, dir, k, d) : -1) : []));
    const hit = has.findIndex((v) => v.includes(1)), any = has.findIndex((v) => v.some((x) => x >= 0));
    if (hit >= 0) S.sent = hit; else if (any >= 0) S.sent = any;
  }

  // --- model view ------------------------------------------------------------------------------
  function thumbGeometry(T) { const step = Math.max(2, Math.min(6, 150 / T)); return { step, w: 64, h: 8 + step * T }; }
  function renderModelView() {
    const m = S.m, q = quantityOf(m), md = model(m), box = $("model-view"), key = `${m}|${q}|${S.sent}`;
    if (thumbsKey !== key) {
      thumbsKey = key;
      box.textContent = "";
      box.style.gridTemplateColumns = `repeat(${md.H}, 70px)`;
      if (!md.sentences.length) return;
      const T = md.sentences[S.sent].T, g = thumbGeometry(T);
      for (let k = 0; k < numHeads(m); k++) {
        const div = h("div", { class: "thumb", "data-layer": Math.floor(k / md.H) + 1, "data-head": (k % md.H) + 1,
          title: `head ${headName(k, m)}` }, box);
        const canvas = h("canvas", { width: g.w, height: g.h }, div);
        h("div", {}, div, headName(k, m));
        const c = canvas.getContext("2d");
        c.lineWidth = 1;
        for (let a = 0; a < T; a++) {
          for (let b = 0; b < T; b++) {
            const w = weight(m, q, S.sent, k, a, b);
            if (w <= 0) continue;
            c.strokeStyle = `rgba(31,95,191,${w})`;
            c.beginPath();
            c.moveTo(6, 4 + a * g.step);
            c.lineTo(g.w - 6, 4 + b * g.step);
            c.stroke();
          }
        }
        div.addEventListener("click", (ev) => select(k, ev.shiftKey));
      }
    }
    box.querySelectorAll(".thumb").forEach((div, k) => {
      div.classList.toggle("selected", S.heads.includes(k));
      div.style.setProperty("--head-colour", headColour(k));
    });
  }

  // --- compare ---------------------------------------------------------------------------------
  function renderCompare() {
    const panel = $("panel-compare"), box = $("compare");
    panel.hidden = D.models.length < 2;
    if (panel.hidden) return;
    box.textContent = "";
    D.models.forEach((md, m) => box.appendChild(headMap(m, { compare: true, height: 300 })));
    const svg = s("svg", { xmlns: NS, width: 420, height: 60, id: "compare-legend" }, box);
    legend(svg, statDef(S.m, S.stat) || D.models.map((_, m) => statDef(m, S.stat)).find(Boolean), 10, 4, 300);
  }

  // --- export ----------------------------------------------------------------------------------
  function serialise(svg) {
    const copy = svg.cloneNode(true);
    copy.querySelectorAll("[style*='display: none']").forEach((e) => e.remove());  // the current view only
    copy.querySelectorAll("title").forEach((e) => e.remove());
    copy.setAttribute("xmlns", NS);
    s("style", {}, copy, "text { font-family: system-ui, 'DejaVu Sans', sans-serif; } text.tok { font-size: 13px; }" +
      " rect.cell { stroke: #fff; stroke-width: 0.5; } text.mark.right { fill: #1a7f37; } text.mark.wrong { fill: #c62828; }");
    copy.insertBefore(copy.lastChild, copy.firstChild);
    const bg = s("rect", { x: 0, y: 0, width: "100%", height: "100%", fill: "#fff" });
    copy.insertBefore(bg, copy.firstChild.nextSibling);
    return copy;
  }
  function combine(svgs, gap) {  // side by side in one SVG
    let x = 0, height = 0;
    const out = s("svg", { xmlns: NS });
    for (const svg of svgs) {
      const w = Number(svg.getAttribute("width")), hh = Number(svg.getAttribute("height"));
      const inner = serialise(svg);
      inner.setAttribute("x", x);
      out.appendChild(inner);
      x += w + gap;
      height = Math.max(height, hh);
    }
    out.setAttribute("width", x - gap);
    out.setAttribute("height", height);
    out.setAttribute("viewBox", `0 0 ${x - gap} ${height}`);
    return out;
  }
  function modelViewSvg() {
    const m = S.m, q = quantityOf(m), md = model(m), T = md.sentences[S.sent].T, g = thumbGeometry(T);
    const cw = 70, chh = g.h + 16, out = s("svg", { xmlns: NS, width: cw * md.H, height: chh * md.L });
    out.setAttribute("viewBox", `0 0 ${cw * md.H} ${chh * md.L}`);
    s("rect", { width: "100%", height: "100%", fill: "#fff" }, out);
    for (let k = 0; k < numHeads(m); k++) {
      const gx = (k % md.H) * cw, gy = Math.floor(k / md.H) * chh;
      const grp = s("g", { transform: `translate(${gx},${gy})`, "data-head": headName(k, m) }, out);
      if (S.heads.includes(k)) {
        s("rect", { x: 1, y: 1, width: cw - 4, height: chh - 2, fill: "none", stroke: headColour(k), "stroke-width": 2 }, grp);
      }
      for (let a = 0; a < T; a++) {
        for (let b = 0; b < T; b++) {
          const w = weight(m, q, S.sent, k, a, b);
          if (w > 0) {
            s("line", { x1: 9, y1: 6 + a * g.step, x2: g.w - 3, y2: 6 + b * g.step, stroke: "#1f5fbf",
              "stroke-opacity": w.toFixed(4) }, grp);
          }
        }
      }
      s("text", { x: cw / 2, y: g.h + 12, "font-size": 10, "text-anchor": "middle", "font-family": "sans-serif" },
        grp, headName(k, m));
    }
    return out;
  }
  function exportSVG(panel) {
    let svg;
    if (panel === "heads") svg = serialise($("headmap"));
    else if (panel === "sentence") svg = serialise($("sentence-svg"));
    else if (panel === "model") svg = modelViewSvg();
    else if (panel === "compare") svg = combine([...$("compare").querySelectorAll("svg")], 16);
    else throw new Error(`no panel ${panel}`);
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(svg);
  }
  function fileName(panel, ext) {
    const sent = model().sentences[S.sent];
    return `explorer-${model().name}-${panel}${panel === "sentence" && sent ? "-" + sent.id : ""}.${ext}`
      .replace(/[^\w.-]+/g, "_");
  }
  function download(name, blob) {
    const a = h("a", { href: URL.createObjectURL(blob), download: name }, document.body);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  }
  async function exportPNG(panel) {
    const text = exportSVG(panel), doc = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
    const w = Number(doc.getAttribute("width")), hh = Number(doc.getAttribute("height")), scale = 2;
    const img = new Image();
    img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(text);
    await img.decode();
    const canvas = h("canvas", { width: Math.ceil(w * scale), height: Math.ceil(hh * scale) });
    const c = canvas.getContext("2d");
    c.fillStyle = "#fff";
    c.fillRect(0, 0, canvas.width, canvas.height);
    c.drawImage(img, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }
  function exportButtons() {
    document.querySelectorAll(".exports").forEach((span) => {
      const panel = span.dataset.panel;
      for (const format of ["svg", "png"]) {
        const b = h("button", { class: "export", type: "button", "data-panel": panel, "data-format": format,
          title: `download the current ${panel} view as ${format.toUpperCase()}` }, span, format.toUpperCase());
        b.addEventListener("click", async () => {
          try {
            const blob = format === "svg" ? new Blob([exportSVG(panel)], { type: "image/svg+xml" }) : await exportPNG(panel);
            download(fileName(panel, format), blob);
          } catch (e) {
            console.error(`export of ${panel} as ${format} failed: ${e}`);
          }
        });
      }
    });
  }

  // --- controls and rendering --------------------------------------------------------------------
  function options(select, items, value) {
    select.textContent = "";
    for (const [v, label] of items) h("option", { value: v }, select, label);
    select.value = value;
  }
  function renderControls() {
    const md = model(), qs = Object.keys(md.quantities);
    S.q = quantityOf(S.m);
    $("model-label").hidden = D.models.length < 2;
    options($("model"), D.models.map((x, m) => [m, `${x.name} (${x.family}, ${x.L}×${x.H})`]), S.m);
    $("quantity-label").hidden = qs.length < 2;
    options($("quantity"), qs.map((q) => [q, q === "norm" ? "norm-weighted (‖αf(x)‖)" : q]), S.q);
    const defs = statDefs(S.m, S.q);
    if (!defs.some((d) => d.key === S.stat)) S.stat = defs[0].key;
    options($("stat"), defs.map((d) => [d.key, d.label]), S.stat);
    const rels = ["All", ...qdata(S.m).relations.map((r) => r.relation).filter((r) => r !== "All")];
    if (!rels.includes(S.rel)) S.rel = "All";
    options($("relation"), rels.map((r) => [r, r]), S.rel);
    $("caveat").textContent = `${md.caveat} Statistics over ${qdata(S.m).num_sentences} sentences of ${md.corpus} ` +
      `${md.split}; ${md.sentences.length} of them in the sample below.`;
  }
  function render() {
    clampSentence();
    S.heads = S.heads.filter((k) => k < numHeads(S.m));
    if (!S.heads.length) S.heads = [0];
    renderControls();
    renderHeadMap();
    headInfo(S.m, S.heads[0]);
    renderSentence();
    applyHover();
    renderList();
    renderExamples();
    renderRelations();
    renderModelView();
    renderCompare();
    document.body.dataset.rendered = `${S.m}|${S.q}|${S.stat}|${S.heads.join(",")}|${S.sent}|${S.rel}`;
  }
  function wire() {
    $("model").addEventListener("change", (e) => {
      S.m = Number(e.target.value);
      S.heads = [];
      bestHeadOf(S.rel, false);  // the same relation's best head in this model, if it has the row
      render();
    });
    $("quantity").addEventListener("change", (e) => { S.q = e.target.value; render(); });
    $("stat").addEventListener("change", (e) => { S.stat = e.target.value; render(); });
    $("relation").addEventListener("change", (e) => chooseRelation(e.target.value, false));
    $("search").addEventListener("input", (e) => { S.search = e.target.value; renderList(); });
    exportButtons();
  }

  // --- loading ---------------------------------------------------------------------------------
  function fromBase64(text) {
    const bin = atob(text.trim()), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  async function gunzip(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  async function load() {
    for (const [m, md] of D.models.entries()) {
      const K = md.L * md.H;
      mapStart[m] = [];
      bitStart[m] = [];
      let at = 0, bit = 0;
      for (const sent of md.sentences) {
        mapStart[m].push(at);
        bitStart[m].push(bit);
        at += K * sent.T * sent.T;
        bit += sent.rels ? 2 * K * sent.words.length : 0;
      }
      maps[m] = {};
      bits[m] = {};
      for (const [q, qd] of Object.entries(md.quantities)) {
        const tag = document.getElementById(`maps-${m}-${q}`);
        maps[m][q] = await gunzip(fromBase64(tag.textContent));
        if (maps[m][q].length !== at) throw new Error(`${md.name} ${q}: ${maps[m][q].length} map bytes, expected ${at}`);
        bits[m][q] = fromBase64(qd.correct);
      }
    }
    // open on the most frequent relation's best head, on the sentence asked for (the talk's
    // example) when the sample has it, else on one where that head is right
    const md = model(0), qd = qdata(0, Object.keys(md.quantities)[0]);
    const first = qd.relations.find((r) => r.relation !== "All");
    S.q = Object.keys(md.quantities)[0];
    S.rel = first ? first.relation : "All";
    S.heads = [0];
    S.stat = "first";
    if (first) bestHeadOf(first.relation, !md.featured);
    $("notes").textContent = [D.rounding, ...D.models.flatMap((x) => x.notes.map((n) => `${x.name}: ${n}`))].join(" ");
    wire();
    render();
    $("loading").hidden = true;
  }

  window.explorer = { state: S, data: D, render, select, exportSVG, weight: (m, q, i, k, a, b) => weight(m, q, i, k, a, b),
    setStat(key) { S.stat = key; render(); }, setSentence(i) { S.sent = i; render(); } };
  load().then(() => {
    document.body.dataset.loadMs = performance.now().toFixed(0);
    document.body.dataset.ready = "1";
  }).catch((e) => {
    $("loading").textContent = `The explorer could not start: ${e}`;
    $("loading").classList.add("error");
    console.error(e);
  });
})();
