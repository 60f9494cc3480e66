// Draws the timeline page from the JSON in #data (built by simulator/src/timeline/*.rs).
// Canvases, not one element per thing: a 40k-tick run has tens of thousands of segments and
// operations. At low zoom each lane draws at most one segment or bar per pixel column.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const main = document.getElementById("main");
  const tip = document.getElementById("tip");
  document.getElementById("noscript").remove();
  // 64-bit numbers come as strings; ticks and ops of a run fit a double exactly.
  const num = (s) => (s === null || s === undefined ? null : Number(s));

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }

  function showTip(text, ev) {
    if (!text) { tip.hidden = true; return; }
    tip.textContent = text;
    tip.hidden = false;
    const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 4);
    const y = Math.min(ev.clientY + 14, window.innerHeight - tip.offsetHeight - 4);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  // The last index i with a[i] <= t (-1 if none).
  function floorIndex(a, t) {
    let lo = 0, hi = a.length - 1, r = -1;
    while (lo <= hi) {
      const m = (lo + hi) >> 1;
      if (a[m] <= t) { r = m; lo = m + 1; } else hi = m - 1;
    }
    return r;
  }

  // A canvas sized to its box at the screen's pixel ratio.
  function sizeCanvas(canvas, width, height) {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    return g;
  }

  // A view window [t0, t1] over [lo, hi], zoomed by the wheel and panned by dragging.
  function makeView(lo, hi, minSpan, redraw) {
    const v = { t0: lo, t1: hi, lo, hi };
    v.set = function (a, b) {
      let span = Math.max(minSpan, Math.min(hi - lo, b - a));
      a = Math.max(lo, Math.min(a, hi - span));
      v.t0 = a; v.t1 = a + span;
      redraw();
    };
    v.zoom = function (factor, at) {
      const a = at - (at - v.t0) * factor, b = at + (v.t1 - at) * factor;
      v.set(a, b);
    };
    v.fit = () => v.set(lo, hi);
    return v;
  }

  function controls(view, extra, hint) {
    const bar = el("div", { class: "controls" },
      el("button", { onclick: () => view.fit() }, "Fit"),
      el("button", { onclick: () => view.zoom(0.5, (view.t0 + view.t1) / 2) }, "Zoom in"),
      el("button", { onclick: () => view.zoom(2, (view.t0 + view.t1) / 2) }, "Zoom out"));
    for (const e of extra) bar.append(e);
    bar.append(el("span", { class: "hint" }, hint));
    return bar;
  }

  // Wheel zoom and drag pan on `target`; `tickAt(x)` maps a client x to the axis.
  function interact(target, view, tickAt, onHover, onClick) {
    let drag = null;
    target.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      view.zoom(Math.exp(ev.deltaY * 0.0015), tickAt(ev.clientX));
    }, { passive: false });
    target.addEventListener("mousedown", (ev) => {
      drag = { x: ev.clientX, t0: view.t0, t1: view.t1, moved: false };
    });
    window.addEventListener("mouseup", (ev) => {
      if (drag && !drag.moved && onClick) onClick(ev);
      drag = null;
    });
    target.addEventListener("mousemove", (ev) => {
      if (drag && (ev.buttons & 1)) {
        const dx = ev.clientX - drag.x;
        if (Math.abs(dx) > 2) drag.moved = true;
        if (drag.moved) {
          const per = (drag.t1 - drag.t0) / Math.max(1, target.clientWidth - 120);
          view.set(drag.t0 - dx * per, drag.t1 - dx * per);
        }
      }
      onHover(ev);
    });
    target.addEventListener("mouseleave", () => showTip(null));
  }

  function reportDetails(text) {
    return el("details", { class: "report" }, el("summary", {}, "The full report"), el("pre", {}, text));
  }

  function legend(items) {
    const l = el("div", { class: "legend" });
    for (const [color, text, style] of items) {
      l.append(el("span", {}, el("i", { style: "background:" + color + ";" + (style || "") }), text));
    }
    return l;
  }

  // ---------------------------------------------------------------- a run ----------------

  const STATUS_COLOR = {
    normal: "#c8e6c9", view_change: "#ffcc80", recovering: "#ce93d8", down: "#546e7a", opened: "#b3e5fc",
  };
  // At low zoom a pixel shows the worst status it covers, so a short view change stays visible.
  const STATUS_RANK = { normal: 0, opened: 1, recovering: 2, view_change: 3, down: 4 };
  const OK = "#42a5f5", NO_REPLY = "#ef5350", INVOLVED = "#ffd600";

  function runView() {
    const end = num(D.ticks);
    const statuses = D.statuses;
    // One lane per replica and group: lane r * G + g (a node's groups side by side).
    const G = D.groups || 1;
    const laneName = (r, g) => G > 1 ? `r${r} group ${g}` : `replica ${r}`;
    const lanes = D.lanes.map((lane) => ({
      t: Float64Array.from(lane, (e) => num(e[0])),
      s: lane.map((e) => statuses[e[1]]),
      v: lane.map((e) => e[2]),
      c: Float64Array.from(lane, (e) => num(e[3])),
    }));
    const commitMax = Math.max(1, num(D.commit_max), ...lanes.map((l) => l.c[l.c.length - 1] || 0));
    const bands = D.bands.map((b) => ({ ...b, from: num(b.from), to: num(b.to) }));
    const marks = D.marks.map((m) => ({ ...m, tick: num(m.tick) }));
    const ops = D.ops.map((o, i) => ({ i, client: o[0], call: num(o[1]), ret: num(o[2]), label: o[3] }));
    const violation = D.violation;
    const involved = new Set(violation ? violation.involved : []);
    const byClient = [];
    for (let c = 0; c < D.clients; c++) byClient.push([]);
    for (const op of ops) (byClient[op.client] || (byClient[op.client] = [])).push(op);
    for (const list of byClient) list.sort((a, b) => a.call - b.call);
    const retEnds = byClient.map((list) => {
      // Running maximum of returns: a binary search finds the first bar reaching t0.
      let m = -Infinity;
      return Float64Array.from(list, (op) => (m = Math.max(m, op.ret === null ? end : op.ret)));
    });
    const liveness = num(D.liveness);

    document.getElementById("summary").textContent =
      `seed ${D.seed} · outcome ${D.outcome} · ${end} ticks · ${D.replicas} replicas` +
      (G > 1 ? ` × ${G} groups` : "") + ` · ${D.clients} clients · ` +
      `${ops.length} client operations · trace ${D.trace_hash} · vopr ${D.version}`;

    const L = 118; // the label column
    const AXIS = 22, LANE = 30, NET = 20, GAP = 8;
    const clientLane = Math.max(4, Math.min(14, Math.floor(320 / Math.max(1, D.clients))));
    const rows = []; // {y, h, kind, index, group, lane}
    let y = AXIS;
    for (let r = 0; r < D.replicas; r++) {
      for (let gr = 0; gr < G; gr++) {
        rows.push({ y, h: LANE, kind: "replica", index: r, group: gr, lane: r * G + gr });
        y += LANE + (gr + 1 < G ? 1 : 3);
      }
    }
    rows.push({ y, h: NET, kind: "network", index: 0 }); y += NET + GAP;
    for (let c = 0; c < byClient.length; c++) { rows.push({ y, h: clientLane, kind: "client", index: c }); y += clientLane + 1; }
    const height = y + 4;

    let cursor = violation ? num(violation.tick) : Math.floor(end / 2);
    let pinned = false;
    const view = makeView(0, Math.max(end, 1), 20, () => draw());

    const buttons = [];
    if (violation) {
      buttons.push(el("button", {
        onclick: () => {
          const t = num(violation.tick);
          const span = Math.max(200, end / 50);
          cursor = t; pinned = true;
          view.set(t - span * 0.7, t + span * 0.3);
        },
      }, "Zoom to the violation"));
    }
    main.append(controls(view, buttons,
      "wheel: zoom · drag: pan · click: pin the cursor · ←/→: move it (shift: ×100)"));
    if (violation) {
      main.append(el("div", { class: "violation-box" },
        el("b", {}, violation.title),
        ` · ${violation.involved.length} client operations involved (highlighted)`,
        el("pre", {}, violation.message)));
    }
    const plot = el("div", { class: "plot" });
    const canvas = el("canvas");
    const cursorLine = el("div", { class: "cursor-line" });
    plot.append(canvas, cursorLine);
    let marker = null;
    if (violation) {
      marker = el("div", { id: "violation", class: "violation", title: violation.title },
        el("span", {}, violation.title));
      plot.append(marker);
    }
    main.append(plot);
    main.append(legend([
      [STATUS_COLOR.normal, "normal"], [STATUS_COLOR.view_change, "view change"],
      [STATUS_COLOR.recovering, "recovering"], [STATUS_COLOR.down, "down (crashed)"],
      [STATUS_COLOR.opened, "up since a restart (the state it opened in is not traced)"], ["#1b5e20", "commit (line)"],
      ["#1e88e5", "paused"], ["#fb8c00", "isolated"], ["rgba(229,57,53,.35)", "partition"],
      ["#9e9e9e", "clogged path"], [OK, "op: reply"], [NO_REPLY, "op: no reply"],
      [INVOLVED, "op involved in the violation"],
    ]));
    const panel = el("div", { id: "cursor" });
    main.append(panel);
    main.append(reportDetails(D.report));

    let width = 0;
    const W = () => width - L - 8;
    const xOf = (t) => L + ((t - view.t0) / (view.t1 - view.t0)) * W();
    const tOf = (x) => view.t0 + ((x - L) / W()) * (view.t1 - view.t0);
    const tickAt = (clientX) => tOf(clientX - canvas.getBoundingClientRect().left);

    function draw() {
      width = Math.max(600, main.clientWidth - 30);
      const g = sizeCanvas(canvas, width, height);
      g.clearRect(0, 0, width, height);
      g.font = "11px system-ui, sans-serif";
      g.textBaseline = "middle";
      drawAxis(g);
      for (const row of rows) {
        g.fillStyle = "#333";
        g.textAlign = "left";
        const name = row.kind === "replica" ? laneName(row.index, row.group) :
          row.kind === "network" ? "network" : `client ${row.index}`;
        if (row.kind !== "client" || clientLane >= 8) g.fillText(name, 4, row.y + row.h / 2);
        g.save();
        g.beginPath();
        g.rect(L, row.y, W(), row.h);
        g.clip();
        if (row.kind === "replica") drawReplica(g, row);
        else if (row.kind === "network") drawNetwork(g, row);
        else drawClient(g, row);
        g.restore();
      }
      if (clientLane < 8 && byClient.length) {
        const first = rows.find((r) => r.kind === "client");
        g.fillStyle = "#333";
        g.fillText(`clients 0–${byClient.length - 1}`, 4, first.y + 6);
      }
      if (liveness !== null && liveness >= view.t0 && liveness <= view.t1) {
        const x = xOf(liveness);
        g.strokeStyle = "#2e7d32"; g.setLineDash([4, 3]); g.lineWidth = 1.5;
        g.beginPath(); g.moveTo(x, AXIS); g.lineTo(x, height); g.stroke(); g.setLineDash([]);
        g.fillStyle = "#2e7d32";
        const text = `liveness phase (core ${D.core.join(", ")})`;
        // Near the right edge the label goes to the line's left.
        const right = x + 4 + g.measureText(text).width < width;
        g.textAlign = right ? "left" : "right";
        g.fillText(text, right ? x + 4 : x - 4, AXIS - 7);
      }
      place(marker, violation && num(violation.tick));
      place(cursorLine, cursor);
      updatePanel();
    }

    function place(node, t) {
      if (!node) return;
      if (t === null || t < view.t0 || t > view.t1) { node.style.display = "none"; return; }
      node.style.display = "";
      node.style.left = xOf(t) + "px";
      node.classList.toggle("flip", xOf(t) > width - 260);
    }

    function drawAxis(g) {
      const span = view.t1 - view.t0;
      const raw = span / Math.max(1, W() / 90);
      const p = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) || raw;
      g.fillStyle = "#555"; g.strokeStyle = "#eee"; g.textAlign = "center";
      for (let t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
        const x = xOf(t);
        g.fillText(String(Math.round(t)), x, 10);
        g.beginPath(); g.moveTo(x, AXIS - 4); g.lineTo(x, height); g.stroke();
      }
      g.textAlign = "left"; g.fillText("tick", 4, 10);
    }

    // A mark on a replica's lane: a storage fault on its group's lane only, the rest (crashes,
    // restarts, dropped start_views) on every lane of the replica.
    const onRow = (m, row) => m.replica === row.index && (m.group === undefined || m.group === row.group);

    function drawReplica(g, row) {
      const lane = lanes[row.lane];
      const n = lane.t.length;
      let i = Math.max(0, floorIndex(lane.t, view.t0));
      // Status fill: one rectangle per run of a status, or per pixel where runs are thinner.
      let px = -1, worst = null;
      const flush = () => {
        if (worst !== null) { g.fillStyle = STATUS_COLOR[worst]; g.fillRect(px, row.y, 1, row.h); }
        worst = null;
      };
      const first = i;
      for (; i < n && lane.t[i] <= view.t1; i++) {
        const from = Math.max(lane.t[i], view.t0), to = i + 1 < n ? Math.min(lane.t[i + 1], view.t1) : Math.min(end, view.t1);
        const x0 = xOf(from), x1 = xOf(to), s = lane.s[i];
        if (Math.floor(x1) - Math.floor(x0) >= 1) {
          // Wide: finish the pixel it starts in, then draw it whole.
          if (Math.floor(x0) === px) { if (worst === null || STATUS_RANK[s] > STATUS_RANK[worst]) worst = s; }
          flush();
          g.fillStyle = STATUS_COLOR[s];
          g.fillRect(Math.floor(x0) + 1, row.y, Math.floor(x1) - Math.floor(x0), row.h);
          px = Math.floor(x1); worst = s;
        } else {
          const p = Math.floor(x0);
          if (p !== px) { flush(); px = p; }
          if (worst === null || STATUS_RANK[s] > STATUS_RANK[worst]) worst = s;
        }
      }
      flush();
      // Views: a label where the view changes and there is room for it.
      g.fillStyle = "#263238"; g.textAlign = "left";
      let lastLabelEnd = -Infinity;
      for (let k = first; k < i; k++) {
        if (k > 0 && lane.v[k] === lane.v[k - 1] && k !== first) continue;
        const x = Math.max(L, xOf(Math.max(lane.t[k], view.t0)));
        if (x < lastLabelEnd + 4) continue;
        const text = lane.s[k] === "down" ? "down" : `v${lane.v[k]}`;
        g.fillText(text, x + 2, row.y + 8);
        lastLabelEnd = x + 2 + g.measureText(text).width;
      }
      // Commit: a step line over the lane, one vertex per pixel column at most.
      g.strokeStyle = "#1b5e20"; g.lineWidth = 1.2; g.beginPath();
      const yOf = (c) => row.y + row.h - 2 - (c / commitMax) * (row.h - 6);
      let started = false, lastX = 0, curY = 0;
      for (let k = first; k < i; k++) {
        const x = Math.max(L, xOf(Math.max(lane.t[k], view.t0)));
        const yy = yOf(lane.c[k]);
        if (!started) { g.moveTo(x, yy); started = true; lastX = x; curY = yy; continue; }
        // Within one pixel column only the last value shows.
        if (x - lastX < 1) { curY = yy; continue; }
        g.lineTo(lastX, curY); g.lineTo(x, curY);
        lastX = x; curY = yy;
      }
      if (started) { g.lineTo(lastX, curY); g.lineTo(xOf(Math.min(end, view.t1)), curY); }
      g.stroke();
      // Pauses and isolations: a strip at the lane's top; marks: triangles and ticks.
      for (const b of bands) {
        if (b.replica !== row.index || b.to < view.t0 || b.from > view.t1) continue;
        g.fillStyle = b.kind === "pause" ? "#1e88e5" : "#fb8c00";
        const x0 = xOf(b.from), x1 = xOf(b.to);
        g.fillRect(x0, row.y + row.h - 5, Math.max(1, x1 - x0), 4);
      }
      let lastMark = -Infinity;
      for (const m of marks) {
        if (!onRow(m, row) || m.tick < view.t0 || m.tick > view.t1) continue;
        const x = xOf(m.tick);
        if (x - lastMark < 1 && m.kind === "storage") continue;
        lastMark = x;
        if (m.kind === "crash" || m.kind === "restart") {
          g.fillStyle = m.kind === "crash" ? "#c62828" : "#2e7d32";
          g.beginPath(); g.moveTo(x - 4, row.y); g.lineTo(x + 4, row.y); g.lineTo(x, row.y + 7); g.fill();
        } else {
          g.fillStyle = m.kind === "storage" ? "#6d4c41" : "#8e24aa";
          g.fillRect(x, row.y + row.h - 9, 1.5, 8);
        }
      }
    }

    function drawNetwork(g, row) {
      g.fillStyle = "#f5f5f5"; g.fillRect(L, row.y, W(), row.h);
      let lastClog = -1;
      for (const b of bands) {
        if (b.replica !== null || b.to < view.t0 || b.from > view.t1) continue;
        const x0 = xOf(b.from), x1 = xOf(b.to);
        if (b.kind === "partition") {
          g.fillStyle = "rgba(229,57,53,.35)";
          g.fillRect(x0, row.y, Math.max(1, x1 - x0), row.h);
          if (x1 - x0 > 60) {
            g.fillStyle = "#b71c1c"; g.textAlign = "left";
            g.fillText(b.label.replace("partition: ", ""), Math.max(L, x0) + 3, row.y + row.h / 2);
          }
        } else if (Math.max(1, x1 - x0) > 1 || Math.floor(x0) !== lastClog) {
          g.fillStyle = "#9e9e9e";
          g.fillRect(x0, row.y + row.h - 4, Math.max(1, x1 - x0), 3);
          lastClog = Math.floor(x0);
        }
      }
    }

    function drawClient(g, row) {
      const list = byClient[row.index] || [];
      let k = Math.max(0, floorIndex(retEnds[row.index], view.t0 - 1e-9) + 1);
      let lastPx = -Infinity;
      const hot = [];
      for (; k < list.length && list[k].call <= view.t1; k++) {
        const op = list[k];
        const x0 = xOf(op.call), x1 = xOf(op.ret === null ? end : op.ret);
        if (involved.has(op.i)) hot.push([x0, x1]);
        // At most one bar per pixel column: a bar inside the last one drawn is skipped.
        if (Math.floor(x1) <= lastPx && op.ret !== null) continue;
        g.fillStyle = op.ret === null ? NO_REPLY : OK;
        g.fillRect(x0, row.y, Math.max(1, x1 - x0 - (x1 - x0 > 3 ? 1 : 0)), row.h);
        lastPx = Math.floor(x1);
      }
      for (const [x0, x1] of hot) {
        g.fillStyle = INVOLVED; g.strokeStyle = "#000"; g.lineWidth = 1;
        g.fillRect(x0, row.y, Math.max(3, x1 - x0), row.h);
        g.strokeRect(x0, row.y + 0.5, Math.max(3, x1 - x0), row.h - 1);
      }
    }

    function stateAt(laneIndex, t) {
      const lane = lanes[laneIndex];
      const k = floorIndex(lane.t, t);
      if (k < 0) return null;
      return { s: lane.s[k], v: lane.v[k], c: lane.c[k] };
    }

    function updatePanel() {
      const t = Math.round(cursor);
      const table = el("table", {}, el("tr", {}, el("th", {}, G > 1 ? "replica, group" : "replica"),
        el("th", {}, "status"), el("th", {}, "view"), el("th", {}, "commit"), el("th", {}, "faults at this tick")));
      for (const row of rows) {
        if (row.kind !== "replica") continue;
        const r = row.index;
        const st = stateAt(row.lane, t);
        const active = bands.filter((b) => b.replica === r && b.from <= t && t < b.to).map((b) => b.label);
        const who = G > 1 ? `${r}, ${row.group}` : String(r);
        table.append(el("tr", {}, el("td", {}, who), el("td", {}, st ? st.s.replace("_", " ") : "?"),
          el("td", {}, st ? String(st.v) : "?"), el("td", {}, st ? String(st.c) : "?"),
          el("td", {}, active.join("; ") || "–")));
      }
      const net = bands.filter((b) => b.replica === null && b.from <= t && t < b.to);
      const part = net.filter((b) => b.kind === "partition").map((b) => b.label);
      const clogs = net.length - part.length;
      const flying = ops.filter((op) => op.call <= t && (op.ret === null || op.ret >= t));
      const shown = flying.slice(0, 12).map((op) => `c${op.client}: ${op.label}${op.ret === null ? " (no reply)" : ""}`);
      panel.replaceChildren(
        el("div", {}, el("b", {}, `tick ${t}`), pinned ? " (pinned)" : "",
          ` · network: ${part.join("; ") || "no partition"}${clogs ? `, ${clogs} clogged paths` : ""}`),
        table,
        el("div", { class: "in-flight" }, `${flying.length} client operations in flight` +
          (shown.length ? ": " + shown.join(" · ") + (flying.length > shown.length ? " · …" : "") : "")));
    }

    function hover(ev) {
      const rect = canvas.getBoundingClientRect();
      const x = ev.clientX - rect.left, yy = ev.clientY - rect.top;
      if (x < L) { showTip(null); return; }
      const t = tOf(x);
      if (!pinned) { cursor = Math.max(0, Math.min(end, t)); place(cursorLine, cursor); updatePanel(); }
      const row = rows.find((r) => yy >= r.y && yy < r.y + r.h);
      if (!row) { showTip(`tick ${Math.round(t)}`, ev); return; }
      const near = (tick) => Math.abs(xOf(tick) - x) <= 4;
      let text = null;
      if (row.kind === "replica") {
        const m = marks.find((m) => onRow(m, row) && near(m.tick));
        const b = bands.find((b) => b.replica === row.index && b.from <= t && t < b.to);
        const st = stateAt(row.lane, t);
        text = m ? `tick ${m.tick}: ${m.label}` :
          `${laneName(row.index, row.group)} at tick ${Math.round(t)}: ${st ? `${st.s}, view ${st.v}, commit ${st.c}` : "?"}` +
          (b ? `\n${b.label} (ticks ${b.from}–${b.to})` : "");
      } else if (row.kind === "network") {
        const b = bands.filter((b) => b.replica === null && b.from <= t && t < b.to);
        text = b.length ? b.slice(0, 6).map((b) => `${b.label} (ticks ${b.from}–${b.to})`).join("\n") +
          (b.length > 6 ? `\n… ${b.length - 6} more` : "") : `tick ${Math.round(t)}: no network fault`;
      } else {
        const list = byClient[row.index] || [];
        const k = floorIndex(Float64Array.from(list, (o) => o.call), t);
        const op = k >= 0 ? list[k] : null;
        if (op && (op.ret === null || op.ret >= t - (view.t1 - view.t0) / W())) {
          text = `client ${op.client}: ${op.label}\ncall ${op.call}, ` +
            (op.ret === null ? "no reply" : `return ${op.ret}`) + (involved.has(op.i) ? "\ninvolved in the violation" : "");
        } else text = `client ${row.index}: idle at tick ${Math.round(t)}`;
      }
      showTip(text, ev);
    }

    interact(canvas, view, tickAt, hover, (ev) => {
      const x = ev.clientX - canvas.getBoundingClientRect().left;
      if (x < L) return;
      cursor = Math.max(0, Math.min(end, tOf(x)));
      pinned = true;
      draw();
    });
    window.addEventListener("keydown", (ev) => {
      if (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight") return;
      const step = (ev.shiftKey ? 100 : 1) * (ev.key === "ArrowLeft" ? -1 : 1);
      cursor = Math.max(0, Math.min(end, Math.round(cursor) + step));
      pinned = true;
      if (cursor < view.t0 || cursor > view.t1) {
        const span = view.t1 - view.t0;
        view.set(cursor - span / 2, cursor + span / 2);
      } else draw();
    });
    window.addEventListener("resize", draw);
    // A link can open a window and pin the cursor: #ticks=FROM-TO&cursor=TICK.
    const hash = new URLSearchParams(location.hash.slice(1));
    const range = /^(\d+)-(\d+)$/.exec(hash.get("ticks") || "");
    if (hash.get("cursor") !== null && !isNaN(Number(hash.get("cursor")))) {
      cursor = Math.max(0, Math.min(end, Number(hash.get("cursor")))); pinned = true;
    }
    if (range) view.set(Number(range[1]), Number(range[2]));
    else draw();
  }

  // ----------------------------------------------------------- a history -----------------

  const H = { prefix: "#66bb6a", cannot: "#e53935", strand: "#fb8c00", later: "#bdbdbd", ok: "#a5d6a7", unknown: "#cfd8dc" };

  function historyView() {
    const times = D.times;
    const R = Math.max(1, times.length);
    const ops = D.ops.map((o, i) => ({ i, client: o[0], call: o[1], ret: o[2], label: o[3] }));
    const bad = D.keys.filter((k) => k.verdict === "not linearizable");
    document.getElementById("summary").textContent =
      `${D.verdict} · ${D.keys.length} keys · ${ops.length} operations · axis: event order ` +
      `(each distinct call or return time is one step)`;
    const sections = [];
    const view = makeView(0, R, 4, () => sections.forEach((s) => s.open() && s.draw()));
    main.append(controls(view, [], "wheel: zoom · drag: pan · hover an operation for its times and state"));
    main.append(legend([
      [H.prefix, "in the longest linearizable prefix (numbered in order)"],
      [H.cannot, "cannot be placed next"], [H.strand, "fits, but strands a read due soon"],
      [H.later, "after the prefix (not reached)"], [H.ok, "key linearizable"], [H.unknown, "key undecided or not checked"],
      ["#fff", "no reply (drawn to the end)", "border-style:dashed"],
    ]));
    if (bad.length) {
      const k = bad[0];
      const text = k.anomaly ? `key ${JSON.stringify(k.key)}: no order of its operations can explain this: ${k.anomaly.message}` :
        `key ${JSON.stringify(k.key)}: the longest linearizable prefix has ${k.prefix.length} operations; ` +
        `state after it: ${k.state}; ${k.cannot.length} operations cannot be placed next`;
      main.append(el("div", { class: "violation-box" }, el("b", {}, "not linearizable"), " · ", text));
    }
    const ordered = bad.concat(D.keys.filter((k) => k.verdict !== "not linearizable"));
    for (const key of ordered) sections.push(keySection(key, view, R, ops, ordered.length <= 4 || key.verdict === "not linearizable"));
    main.append(reportDetails(D.report));
    window.addEventListener("resize", () => sections.forEach((s) => s.open() && s.draw()));
    sections.forEach((s) => s.open() && s.draw());
  }

  function keySection(key, view, R, ops, open) {
    const failing = key.verdict === "not linearizable";
    const order = new Map((key.prefix || []).map((i, n) => [i, n]));
    const cannot = new Set(key.cannot || []), strand = new Set(key.strand || []), blamed = new Set(key.blamed || []);
    const mine = key.ops.map((i) => ops[i]);
    const clients = [...new Set(mine.map((o) => o.client))].sort((a, b) => Number(a) - Number(b));
    const rowOf = new Map(clients.map((c, n) => [c, n]));
    const byRow = clients.map(() => []);
    for (const op of mine) byRow[rowOf.get(op.client)].push(op);
    for (const list of byRow) list.sort((a, b) => a.call - b.call);
    const ROW = 18, TOP = 18, L = 90;
    const height = TOP + clients.length * ROW + 6;
    const cls = failing ? "verdict-bad" : key.verdict === "linearizable" ? "verdict-ok" : "verdict-unknown";
    // Unknown beside a violation: the check stops at the first key that fails.
    const said = key.verdict === "unknown" && D.verdict === "not linearizable" ?
      "not checked (the check stops at the first violation)" : key.verdict;
    const details = el("details", { class: "key" }, el("summary", {}, `key ${JSON.stringify(key.key)} · `,
      el("span", { class: cls }, said), ` · ${mine.length} operations · ${clients.length} clients`));
    if (open) details.open = true;
    const plot = el("div", { class: "plot" });
    const canvas = el("canvas");
    plot.append(canvas);
    details.append(plot);
    // Where the violation shows: the earliest return among the operations that cannot be
    // placed (one of them had to be linearized by then), or the anomaly's impossible op.
    let marker = null, markAt = null;
    if (failing) {
      const blame = key.anomaly ? key.anomaly.ops.slice(-1) : (key.cannot.length ? key.cannot : key.blamed || []);
      const rets = blame.map((i) => (ops[i].ret === null ? R : ops[i].ret));
      markAt = rets.length ? Math.min(...rets) : null;
      marker = el("div", { id: "violation", class: "violation", title: "no operation can be placed here" },
        el("span", {}, key.anomaly ? "impossible" : "nothing fits next"));
      plot.append(marker);
      details.append(evidence(key, ops));
    }
    main.append(details);
    let width = 0;
    const W = () => width - L - 8;
    const xOf = (r) => L + ((r - view.t0) / (view.t1 - view.t0)) * W();
    const tOf = (x) => view.t0 + ((x - L) / W()) * (view.t1 - view.t0);

    function color(op) {
      if (!failing) return key.verdict === "linearizable" ? H.ok : H.unknown;
      if (order.has(op.i)) return H.prefix;
      if (cannot.has(op.i) || (key.anomaly && blamed.has(op.i))) return H.cannot;
      if (strand.has(op.i)) return H.strand;
      return H.later;
    }

    function draw() {
      width = Math.max(600, main.clientWidth - 30);
      const g = sizeCanvas(canvas, width, height);
      g.font = "11px system-ui, sans-serif"; g.textBaseline = "middle";
      g.fillStyle = "#555"; g.textAlign = "left";
      g.fillText("event", 4, 9);
      const span = view.t1 - view.t0;
      const step = Math.max(1, Math.pow(10, Math.ceil(Math.log10(span / Math.max(1, W() / 80)))));
      g.strokeStyle = "#f0f0f0"; g.textAlign = "center";
      for (let r = Math.ceil(view.t0 / step) * step; r <= view.t1; r += step) {
        g.fillText(String(r), xOf(r), 9);
        g.beginPath(); g.moveTo(xOf(r), TOP - 3); g.lineTo(xOf(r), height); g.stroke();
      }
      for (let n = 0; n < clients.length; n++) {
        const y = TOP + n * ROW;
        g.fillStyle = "#333"; g.textAlign = "left";
        g.fillText(`client ${clients[n]}`, 4, y + ROW / 2);
        g.save(); g.beginPath(); g.rect(L, y, W(), ROW); g.clip();
        let lastPx = -Infinity;
        const hot = [];
        for (const op of byRow[n]) {
          const end = op.ret === null ? R : op.ret + 1;
          if (end < view.t0 || op.call > view.t1) continue;
          const x0 = xOf(op.call), x1 = xOf(end);
          const special = failing && (order.has(op.i) ? false : color(op) !== H.later);
          if (special) { hot.push(op); continue; }
          // At most one bar per pixel column per client.
          if (Math.floor(x1) <= lastPx && op.ret !== null) continue;
          bar(g, op, x0, x1, y);
          lastPx = Math.floor(x1);
        }
        for (const op of hot) bar(g, op, xOf(op.call), xOf(op.ret === null ? R : op.ret + 1), y);
        g.restore();
      }
      // The linearization of the prefix, as Porcupine draws it: a point per operation, each
      // no earlier than the one before it and within the operation's interval.
      if (failing && key.prefix && key.prefix.length) {
        g.strokeStyle = "#1b5e20"; g.lineWidth = 1; g.beginPath();
        let at = -Infinity, first = true;
        for (const i of key.prefix) {
          const op = ops[i];
          at = Math.max(at, op.call + 0.5);
          const x = xOf(at), y = TOP + rowOf.get(op.client) * ROW + ROW / 2;
          if (first) { g.moveTo(x, y); first = false; } else g.lineTo(x, y);
        }
        g.stroke();
      }
      if (marker) {
        if (markAt === null || markAt < view.t0 || markAt > view.t1) marker.style.display = "none";
        else {
          marker.style.display = ""; marker.style.left = xOf(markAt) + "px";
          marker.classList.toggle("flip", xOf(markAt) > width - 160);
        }
      }
    }

    function bar(g, op, x0, x1, y) {
      const w = Math.max(2, x1 - x0 - 1);
      g.fillStyle = op.ret === null ? "#fff" : color(op);
      if (op.ret === null) {
        g.fillRect(x0, y + 2, w, ROW - 4);
        g.strokeStyle = color(op); g.setLineDash([3, 2]); g.lineWidth = 1.5;
        g.strokeRect(x0 + 0.5, y + 2.5, w - 1, ROW - 5); g.setLineDash([]);
      } else g.fillRect(x0, y + 2, w, ROW - 4);
      if (failing && (cannot.has(op.i) || blamed.has(op.i))) {
        g.strokeStyle = "#000"; g.lineWidth = 1.5; g.strokeRect(x0 + 0.5, y + 2.5, w - 1, ROW - 5);
      }
      const text = order.has(op.i) ? `${order.get(op.i) + 1}. ${op.label}` : op.label;
      if (w > 30) {
        g.fillStyle = "#111"; g.textAlign = "left";
        g.save(); g.beginPath(); g.rect(x0, y, w, ROW); g.clip();
        g.fillText(text, x0 + 3, y + ROW / 2); g.restore();
      }
    }

    function hover(ev) {
      const rect = canvas.getBoundingClientRect();
      const x = ev.clientX - rect.left, y = ev.clientY - rect.top;
      const n = Math.floor((y - TOP) / ROW);
      if (x < L || n < 0 || n >= clients.length) { showTip(null); return; }
      const r = tOf(x);
      const op = byRow[n].find((o) => o.call <= r && r <= (o.ret === null ? R : o.ret + 1));
      if (!op) { showTip(null); return; }
      const time = (rank) => (rank === null ? "no reply" : D.times[rank]);
      let text = `client ${op.client}: ${op.label}\ncall ${time(op.call)}, return ${time(op.ret)}`;
      if (order.has(op.i)) text += `\n#${order.get(op.i) + 1} of the prefix; state after: ${key.states[order.get(op.i)] ?? "?"}`;
      if (cannot.has(op.i)) text += "\ncannot be placed after the prefix";
      if (strand.has(op.i)) text += "\nfits, but would strand a read due soon";
      showTip(text, ev);
    }

    interact(canvas, view, (cx) => tOf(cx - canvas.getBoundingClientRect().left), hover, null);
    details.addEventListener("toggle", () => { if (details.open) draw(); });
    return { open: () => details.open, draw };
  }

  function evidence(key, ops) {
    const box = el("div", { class: "evidence" });
    const list = el("ul");
    const line = (i, cls, why) => list.append(el("li", { class: cls }, `client ${ops[i].client}: ${ops[i].label} — ${why}`));
    if (key.anomaly) {
      box.append(`Refuted without a search: ${key.anomaly.message}`);
      key.anomaly.ops.forEach((i) => line(i, "cannot", "involved"));
    } else {
      box.append(`Longest linearizable prefix: ${key.prefix.length} operations; state after it: ${key.state}.`);
      key.cannot.forEach((i) => line(i, "cannot", "contradicts that state"));
      key.strand.forEach((i) => line(i, "strand", "fits, but strands a read due soon"));
    }
    box.append(list);
    return box;
  }

  if (D.kind === "run") runView();
  else historyView();
  // Set last: a page whose scripts failed part way never carries it.
  document.body.setAttribute("data-rendered", D.kind);
})();
