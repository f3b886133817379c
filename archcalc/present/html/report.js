// archcalc's report pages: everything is drawn from the JSON in #data. Text from the data is
// only ever set with textContent or as an attribute value, never parsed as markup. Any layer
// kind is shown the same way: its kind name and the arguments the data gives it.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const page = document.getElementById("page");

  function el(tag, attrs, text, parent) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (parent) parent.appendChild(e);
    return e;
  }
  function sv(tag, attrs, text, parent) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (parent) parent.appendChild(e);
    return e;
  }
  // a figure: a JSON number, or exact decimal text past 2^53, or a formula (not a number)
  function num(v) {
    if (typeof v === "number") return v;
    return /^-?\d+$/.test(v) ? Number(v) : NaN;
  }
  function fmt(v) {
    const s = String(v);
    return /^-?\d+$/.test(s) ? s.replace(/\B(?=(\d{3})+(?!\d))/g, ",") : s;
  }
  const UNITS = [["P", 1e15], ["T", 1e12], ["G", 1e9], ["M", 1e6], ["K", 1e3]];
  function unitFor(max) {  // the unit that suits the largest value shown
    for (const u of UNITS) if (max >= u[1]) return u;
    return ["", 1];
  }
  function scaled(v, unit) {
    const x = num(v);
    if (isNaN(x)) return String(v);
    return unit[1] === 1 ? fmt(x) : (x / unit[1]).toFixed(2) + " " + unit[0];
  }
  function section(title) {
    const s = el("section", {}, null, page);
    el("h2", {}, title, s);
    return s;
  }
  function list(items, parent) {
    const ul = el("ul", {class: "legend"}, null, parent);
    for (const t of items) el("li", {}, t, ul);
  }

  // a table sorted by clicking a column head (numbers by value, text by text), filtered by
  // `filter` over each row's `key`
  function sortableTable(parent, columns, rows, onRow) {
    const wrap = el("div", {class: "tablewrap"}, null, parent);
    const table = el("table", {}, null, wrap);
    const head = el("tr", {}, null, el("thead", {}, null, table));
    const body = el("tbody", {}, null, table);
    const trs = rows.map(function (r, i) {
      const tr = el("tr", {"data-index": i}, null, body);
      columns.forEach(function (c) {
        const td = el("td", c.text ? {class: "text"} : {}, null, tr);
        const v = c.get(r);
        if (c.href) el("a", {href: c.href(r)}, v, td); else td.textContent = v;
      });
      if (onRow) tr.addEventListener("click", function () { onRow(i, tr); });
      return tr;
    });
    let sorted = null, descending = true;
    columns.forEach(function (c, k) {
      const th = el("th", c.text ? {class: "text", "data-column": c.title} : {"data-column": c.title},
                    c.title, head);
      th.addEventListener("click", function () {
        descending = sorted === k ? !descending : !c.text;
        sorted = k;
        head.querySelectorAll("th").forEach(function (h) { h.className = columns[h.cellIndex].text ? "text" : ""; });
        th.classList.add(descending ? "sorted-desc" : "sorted-asc");
        const key = c.sort || c.get;
        const order = rows.map(function (r, i) { return i; });
        order.sort(function (a, b) {
          let x = key(rows[a]), y = key(rows[b]), d;
          if (c.text) d = String(x).localeCompare(String(y));
          else {
            x = num(x); y = num(y);
            if (isNaN(x) || isNaN(y)) d = isNaN(x) - isNaN(y);  // formulas last
            else d = descending ? y - x : x - y;
            return d || a - b;
          }
          return (descending ? -d : d) || a - b;
        });
        for (const i of order) body.appendChild(trs[i]);
      });
    });
    return {body: body, rows: trs,
            filter: function (test) { trs.forEach(function (tr, i) { tr.hidden = !test(rows[i]); }); }};
  }

  // ---- one network ------------------------------------------------------------------------
  function argText(v) { return v.length > 14 ? v.slice(0, 13) + "\u2026" : v; }
  // the kind and its arguments: a window f as 3x3, a stride as /2, groups as g32, others k=v
  function kindLabel(l) {
    let window = "", rest = [];
    for (const [k, v] of l.args) {
      if (k === "f") window = /^\(.*\)$/.test(v) ? v.slice(1, -1).split(", ").join("x") : v + "x" + v;
      else if (k === "s") window += "/" + v;
      else if (k === "groups") rest.push("g" + v);
      else rest.push(k + "=" + argText(v));
    }
    return [l.kind, window].concat(rest).filter(Boolean).join(" ");
  }

  function report() {
    const layers = DATA.layers, blocks = DATA.blocks;
    const index = new Map(layers.map(function (l, i) { return [l.name, i]; }));
    el("h1", {}, DATA.network, page);
    el("p", {class: "sub"}, "Spec: " + DATA.file + ". " + DATA.symbols, page);
    const totals = section("Totals");
    const tt = el("table", {id: "totals"}, null, totals);
    for (const [k, v] of DATA.totals) {
      const tr = el("tr", {}, null, tt);
      el("td", {}, k, tr); el("td", {}, v, tr);
    }
    const graph = graphSection(layers, blocks, index);
    barsSection();
    tableSection(layers, graph);
    if (DATA.notes.length) list(DATA.notes, section("Notes"));
    list(DATA.conventions, section("Conventions"));
  }

  function graphSection(layers, blocks, index) {
    const s = section("Graph");
    const bar = el("div", {class: "toolbar"}, null, s);
    const foldAll = el("button", {id: "fold-all"}, "fold all blocks", bar);
    const unfoldAll = el("button", {id: "unfold-all"}, "unfold all", bar);
    const count = el("span", {id: "drawn"}, "", bar);
    el("span", {class: "sub"}, "click a block to unfold it, its frame's title to fold it; hover or click a layer for its figures", bar);
    const row = el("div", {class: "graphrow"}, null, s);
    const box = el("div", {id: "graph"}, null, row);
    const info = el("div", {id: "info"}, "hover or click a node", row);
    const folded = new Set(DATA.fold ? blocks.map(function (b, i) { return i; }) : []);
    let selected = null;

    function visible(i) {  // the drawn node of layer i: its outermost folded block, or itself
      for (const b of layers[i].path) if (folded.has(b)) return "b" + b;
      return "l" + i;
    }
    function short(name, parent) {
      if (parent === null || parent === undefined) return name;
      const p = blocks[parent];
      return !p.run && name.startsWith(p.name + ".") ? name.slice(p.name.length + 1) : name;
    }
    function node(id) {
      const k = Number(id.slice(1));
      if (id[0] === "b") {
        const b = blocks[k];
        return {id: id, block: k, title: short(b.name, b.parent),
                sub: b.count + " layers \u25B8", cls: "node block"};
      }
      const l = layers[k], path = l.path;
      return {id: id, layer: k, title: short(l.name, path.length ? path[path.length - 1] : null),
              sub: kindLabel(l), cls: "node" + (l.kind === "input" ? " input" : "")};
    }
    function graphOf() {
      const nodes = [], seen = new Map(), edges = new Map();
      layers.forEach(function (l, i) {
        const v = visible(i);
        if (!seen.has(v)) { seen.set(v, nodes.length); nodes.push(node(v)); }
        l.inputs.forEach(function (name, k) {
          const u = visible(index.get(name));
          if (u !== v && !edges.has(u + ">" + v)) edges.set(u + ">" + v, {u: u, v: v, shape: l.in_shapes[k]});
        });
      });
      return {nodes: nodes, order: seen, edges: Array.from(edges.values())};
    }
    // layered layout: a node one row below its lowest source; in a row, nodes ordered and
    // placed at the mean of their sources' x, then pushed apart; rows centred
    function layout(g) {
      const preds = new Map(g.nodes.map(function (n) { return [n.id, []]; }));
      for (const e of g.edges) if (g.order.get(e.u) < g.order.get(e.v)) preds.get(e.v).push(e.u);
      const depth = new Map(), rows = [], ord = new Map(g.order);
      for (const n of g.nodes) {
        n.w = Math.max(110, 7 * Math.max(n.title.length, n.sub.length) + 16);
        let d = 0;
        for (const p of preds.get(n.id)) d = Math.max(d, depth.get(p) + 1);
        depth.set(n.id, d);
        (rows[d] = rows[d] || []).push(n);
      }
      // an edge that skips rows runs through a narrow placeholder in each row it crosses, which
      // takes its place in the row's order, so it never passes behind a node (Sugiyama's dummies)
      const spots = [];
      for (const e of g.edges) {
        e.via = [];
        if (!(ord.get(e.u) < ord.get(e.v))) continue;
        let prev = e.u;
        for (let d = depth.get(e.u) + 1; d < depth.get(e.v); d++) {
          const s = {id: "\u0000" + e.u + "\u0001" + e.v + "\u0001" + d, w: 14, dummy: true};
          preds.set(s.id, [prev]);
          ord.set(s.id, ord.get(e.u));
          rows[d].push(s);
          spots.push(s);
          e.via.push(s);
          prev = s.id;
        }
      }
      const GAP = 24, ROW = 86, H = 38;
      const x = new Map();
      rows.forEach(function (row, d) {
        for (const n of row) {
          const ps = preds.get(n.id);
          n.want = ps.length ? ps.reduce(function (s, p) { return s + x.get(p); }, 0) / ps.length : 0;
        }
        row.sort(function (a, b) { return a.want - b.want || ord.get(a.id) - ord.get(b.id); });
        let right = -Infinity;
        for (const n of row) {
          n.x = Math.max(n.want, right + GAP + n.w / 2);
          right = n.x + n.w / 2;
          n.y = 30 + d * ROW;
          n.h = H;
        }
        const shift = (row.reduce(function (s, n) { return s + n.want; }, 0) -
                       row.reduce(function (s, n) { return s + n.x; }, 0)) / row.length;
        for (const n of row) { n.x += shift; x.set(n.id, n.x); }
      });
      const all = g.nodes.concat(spots);
      const left = Math.min.apply(null, all.map(function (n) { return n.x - n.w / 2; }));
      const width = Math.max.apply(null, all.map(function (n) { return n.x + n.w / 2; })) - left;
      for (const n of all) n.x += 30 - left;
      return {width: width + 200, height: 60 + rows.length * ROW};
    }
    function edgePath(a, e, b) {  // down from a, through each placeholder, into b
      let x0 = a.x, y0 = a.y + a.h, d = "M" + x0 + "," + y0;
      for (const p of e.via.concat([b])) {
        const mid = (y0 + p.y) / 2;
        d += " C" + x0 + "," + mid + " " + p.x + "," + mid + " " + p.x + "," + p.y;
        x0 = p.x;
        y0 = p.y;
        if (p.dummy) { y0 = p.y + p.h; d += " L" + x0 + "," + y0; }
      }
      return d;
    }
    function draw() {
      const g = graphOf(), size = layout(g);
      const at = new Map(g.nodes.map(function (n) { return [n.id, n]; }));
      box.textContent = "";
      const svg = sv("svg", {width: size.width, height: size.height, id: "graph-svg"}, null, box);
      const defs = sv("defs", {}, null, svg);
      const m = sv("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7,
                              markerHeight: 7, orient: "auto-start-reverse"}, null, defs);
      sv("path", {d: "M0,0 L10,5 L0,10 z", fill: "#8a8a8a"}, null, m);
      clusters(svg, g);
      const labels = new Map();
      for (const e of g.edges) {
        const a = at.get(e.u), b = at.get(e.v), y0 = a.y + a.h;
        sv("path", {class: "edge", "marker-end": "url(#arrow)", d: edgePath(a, e, b)}, null, svg);
        const seen = labels.get(e.u) || new Set();
        if (!seen.has(e.shape)) {  // the shape beside the edge's start, once per source and shape
          sv("text", {class: "shape", x: a.x + 6, y: y0 + 13 + 12 * seen.size}, e.shape, svg);
          seen.add(e.shape);
          labels.set(e.u, seen);
        }
      }
      for (const n of g.nodes) drawNode(svg, n);
      count.textContent = g.nodes.length + " nodes drawn of " + layers.length + " layers";
      box.setAttribute("data-nodes", g.nodes.length);
    }
    function clusters(svg, g) {  // a frame around each unfolded block that has nodes drawn
      const boxes = new Map();
      for (const n of g.nodes) {
        const path = n.layer !== undefined ? layers[n.layer].path : ancestors(n.block);
        for (const b of path) {
          if (b === n.block) break;
          const r = boxes.get(b) || {x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity, depth: 0};
          r.x0 = Math.min(r.x0, n.x - n.w / 2); r.x1 = Math.max(r.x1, n.x + n.w / 2);
          r.y0 = Math.min(r.y0, n.y); r.y1 = Math.max(r.y1, n.y + n.h);
          boxes.set(b, r);
        }
      }
      for (const [b, r] of boxes) {
        const pad = 8 + 4 * (depthOf(b) === 0 ? 2 : 0);
        const c = sv("g", {class: "cluster", "data-block": blocks[b].name}, null, svg);
        sv("rect", {x: r.x0 - pad, y: r.y0 - pad - 14, width: r.x1 - r.x0 + 2 * pad,
                    height: r.y1 - r.y0 + 2 * pad + 14, rx: 6}, null, c);
        const t = sv("text", {x: r.x0 - pad + 6, y: r.y0 - pad - 3}, "\u25BE " + blocks[b].name + " (fold)", c);
        t.addEventListener("click", function () { folded.add(b); draw(); });
      }
    }
    function ancestors(b) {
      const out = [];
      for (let p = b; p !== null; p = blocks[p].parent) out.unshift(p);
      return out;
    }
    function depthOf(b) { return ancestors(b).length - 1; }
    function drawNode(svg, n) {
      const attrs = {class: n.cls + (selected === n.id ? " selected" : ""), "data-id": n.id,
                     transform: "translate(" + (n.x - n.w / 2) + "," + n.y + ")"};
      if (n.block !== undefined) attrs["data-block"] = blocks[n.block].name;
      else attrs["data-layer"] = layers[n.layer].name;
      const g = sv("g", attrs, null, svg);
      sv("rect", {width: n.w, height: n.h, rx: 5}, null, g);
      sv("text", {x: 8, y: 15}, n.title, g);
      sv("text", {x: 8, y: 30, class: "kind"}, n.sub, g);
      g.addEventListener("mouseenter", function () { show(n); });
      g.addEventListener("click", function () {
        if (n.block !== undefined) { folded.delete(n.block); draw(); return; }
        selected = n.id;
        show(n);
        svg.querySelectorAll(".node.selected").forEach(function (s) { s.classList.remove("selected"); });
        g.classList.add("selected");
      });
    }
    function show(n) {
      info.textContent = "";
      const dl = el("dl", {}, null, info);
      function item(k, v) { el("dt", {}, k, dl); el("dd", {}, v, dl); }
      if (n.block !== undefined) {
        const b = blocks[n.block];
        item("block", b.name); item("layers", b.count); item("params", fmt(b.params));
        item("MACs", fmt(b.macs)); item("", "click to unfold");
        return;
      }
      const l = layers[n.layer];
      item("layer", l.name); item("kind", kindLabel(l));
      if (l.args.length) item("arguments", l.args.map(function (a) { return a[0] + "=" + a[1]; }).join(" "));
      if (l.inputs.length) item("inputs", l.inputs.map(function (name, k) { return name + ": " + l.in_shapes[k]; }).join("; "));
      item("output", l.out_shape);
      item("params", fmt(l.params) + (num(l.frozen_params) ? " (frozen " + fmt(l.frozen_params) + ")" : ""));
      item("MACs", fmt(l.macs)); item("other ops", fmt(l.other_ops));
      item("activations", fmt(l.activations)); item("receptive field (size / stride)", l.rf);
      if (l.formula) {
        item("output, as a formula", l.formula.output); item("params, as a formula", l.formula.params);
        item("MACs, as a formula", l.formula.macs); item("activations, as a formula", l.formula.activations);
      }
    }
    foldAll.addEventListener("click", function () { blocks.forEach(function (b, i) { folded.add(i); }); draw(); });
    unfoldAll.addEventListener("click", function () { folded.clear(); draw(); });
    draw();
    return {show: function (i) { show(node("l" + i)); }};
  }

  function barsSection() {
    const items = DATA.bars.items, s = section("Where the cost sits (params and MACs per " + DATA.bars.per + ")");
    const LABEL = 190, BAR = 300, ROW = 18;
    const svg = sv("svg", {id: "bars", width: LABEL + 2 * (BAR + 110), height: 30 + ROW * items.length}, null, s);
    [["params", 1, "bar-params"], ["MACs", 2, "bar-macs"]].forEach(function (c, k) {
      const values = items.map(function (it) { return num(it[c[1]]); });
      const max = Math.max.apply(null, values.filter(function (v) { return !isNaN(v); }).concat([1]));
      const unit = unitFor(max), x0 = LABEL + k * (BAR + 110);
      sv("text", {x: x0, y: 14}, c[0] + (unit[0] ? " (" + unit[0] + ")" : ""), svg);
      items.forEach(function (it, i) {
        const v = values[i], w = isNaN(v) ? 0 : BAR * v / max, y = 22 + i * ROW;
        sv("rect", {class: c[2], x: x0, y: y, width: Math.max(w, 0), height: ROW - 4}, null, svg);
        sv("text", {x: x0 + w + 4, y: y + 11, class: "shape"}, scaled(it[c[1]], unit), svg);
      });
    });
    items.forEach(function (it, i) {
      sv("text", {x: LABEL - 6, y: 33 + i * ROW, "text-anchor": "end"}, it[0], svg);
    });
  }

  function tableSection(layers, graph) {
    const s = section("Layers");
    const bar = el("div", {class: "toolbar"}, null, s);
    const input = el("input", {id: "filter", type: "search", placeholder: "filter: layer name or kind"}, null, bar);
    const shown = el("span", {id: "shown"}, "", bar);
    const macs = layers.reduce(function (t, l) { return t + (num(l.macs) || 0); }, 0);
    const columns = [
      {title: "layer", text: true, get: function (l) { return l.name; }},
      {title: "kind", text: true, get: kindLabel},
      {title: "input", get: function (l) { return l.in_shapes.join(", ") || "-"; }, text: true},
      {title: "output", get: function (l) { return l.out_shape; }, text: true},
      {title: "params", get: function (l) { return fmt(l.params); }, sort: function (l) { return l.params; }},
      {title: "MACs", get: function (l) { return fmt(l.macs); }, sort: function (l) { return l.macs; }},
      {title: "% MACs", get: function (l) { return macs && !isNaN(num(l.macs)) ? (100 * num(l.macs) / macs).toFixed(1) + "%" : "-"; },
       sort: function (l) { return l.macs; }},
      {title: "other ops", get: function (l) { return fmt(l.other_ops); }, sort: function (l) { return l.other_ops; }},
      {title: "activations", get: function (l) { return fmt(l.activations); }, sort: function (l) { return l.activations; }},
      {title: "RF", get: function (l) { return l.rf; }, text: true},
    ];
    let last = null;
    const t = sortableTable(s, columns, layers, function (i, tr) {
      if (last) last.classList.remove("selected");
      tr.classList.add("selected"); last = tr;
      graph.show(i);
    });
    t.body.parentNode.id = "layers";
    function apply() {
      const q = input.value.trim().toLowerCase();
      t.filter(function (l) { return !q || l.name.toLowerCase().includes(q) || kindLabel(l).toLowerCase().includes(q); });
      shown.textContent = t.rows.filter(function (tr) { return !tr.hidden; }).length + " of " + layers.length + " layers";
    }
    input.addEventListener("input", apply);
    apply();
  }

  // ---- the index ---------------------------------------------------------------------------
  function index() {
    const nets = DATA.networks;
    el("h1", {}, "archcalc reports", page);
    el("p", {class: "sub"}, "Every network given to archcalc report, at its default sizes; click a name for its report.", page);
    scatter(nets, section("MACs against params (log-log)"));
    sortableTable(section("Networks"), [
      {title: "network", text: true, get: function (n) { return n.name; }, href: function (n) { return n.href; }},
      {title: "spec", text: true, get: function (n) { return n.file; }},
      {title: "params", get: function (n) { return fmt(n.params); }, sort: function (n) { return n.params; }},
      {title: "MACs", get: function (n) { return fmt(n.macs); }, sort: function (n) { return n.macs; }},
      {title: "depth", get: function (n) { return n.depth; }},
      {title: "peak activations", get: function (n) { return n.peak; }, sort: function (n) { return parseFloat(n.peak.replace(/,/g, "")); }},
      {title: "weights", get: function (n) { return n.weights; }, sort: function (n) { return parseFloat(n.weights.replace(/,/g, "")); }},
    ], nets).body.parentNode.id = "networks";
    list(DATA.conventions, section("Conventions"));
  }

  function tick(e) {  // 10^e as 1, 10, 100, 1 K, 10 K ...
    const k = Math.min(Math.max(Math.floor(e / 3), 0), 5);
    return Math.pow(10, e - 3 * k) + ["", " K", " M", " G", " T", " P"][k];
  }

  function scatter(nets, parent) {
    const pts = nets.filter(function (n) { return num(n.params) > 0 && num(n.macs) > 0; });
    const W = 900, H = 520, L = 80, B = 50, T = 20, R = 160;
    const svg = sv("svg", {id: "scatter", width: W, height: H}, null, parent);
    if (!pts.length) return;
    const lx = pts.map(function (n) { return Math.log10(num(n.params)); });
    const ly = pts.map(function (n) { return Math.log10(num(n.macs)); });
    const x0 = Math.floor(Math.min.apply(null, lx)), x1 = Math.ceil(Math.max.apply(null, lx) + 1e-9);
    const y0 = Math.floor(Math.min.apply(null, ly)), y1 = Math.ceil(Math.max.apply(null, ly) + 1e-9);
    const X = function (v) { return L + (W - L - R) * (v - x0) / Math.max(x1 - x0, 1); };
    const Y = function (v) { return H - B - (H - B - T) * (v - y0) / Math.max(y1 - y0, 1); };
    for (let e = x0; e <= Math.max(x1, x0 + 1); e++) {
      sv("line", {class: "grid", x1: X(e), x2: X(e), y1: T, y2: H - B}, null, svg);
      sv("text", {x: X(e), y: H - B + 16, "text-anchor": "middle"}, tick(e), svg);
    }
    for (let e = y0; e <= Math.max(y1, y0 + 1); e++) {
      sv("line", {class: "grid", x1: L, x2: W - R, y1: Y(e), y2: Y(e)}, null, svg);
      sv("text", {x: L - 6, y: Y(e) + 4, "text-anchor": "end"}, tick(e), svg);
    }
    sv("text", {x: (W - R + L) / 2, y: H - 10, "text-anchor": "middle"}, "params", svg);
    sv("text", {x: 16, y: (H - B) / 2, transform: "rotate(-90 16 " + (H - B) / 2 + ")", "text-anchor": "middle"}, "MACs per image", svg);
    const placed = [];  // label boxes already drawn: a label that would overlap one is left to the tooltip
    pts.forEach(function (n, i) {
      const x = X(lx[i]), y = Y(ly[i]);
      const a = sv("a", {href: n.href, class: "point-link"}, null, svg);
      sv("title", {}, n.name + ": " + fmt(n.params) + " params, " + fmt(n.macs) + " MACs", a);
      sv("circle", {class: "point", cx: x, cy: y, r: 5}, null, a);
      const box = {x0: x + 7, y0: y - 10, x1: x + 7 + 7 * n.name.length, y1: y + 4};
      if (!placed.some(function (p) { return p.x0 < box.x1 && box.x0 < p.x1 && p.y0 < box.y1 && box.y0 < p.y1; })) {
        sv("text", {x: box.x0, y: y + 3}, n.name, a);
        placed.push(box);
      }
    });
  }

  if (DATA.page === "index") index(); else report();
})();
