#include "portsim/trace/portmap.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "portsim/net/netns.h"
#include "portsim/trace/jsonl.h"

namespace portsim::trace {

const char* port_cat_name(port_cat c) {
  switch (c) {
    case port_cat::free: return "free";
    case port_cat::reserved: return "reserved";
    case port_cat::bound: return "held by bind";
    case port_cat::time_wait: return "TIME_WAIT";
    case port_cat::closing: return "FIN_WAIT2";
    case port_cat::connecting: return "SYN_SENT";
    case port_cat::established: return "ESTABLISHED";
  }
  return "?";
}

namespace {
// Legend order = port_cat order.
constexpr const char* kColors[kPortCats] = {"#eeeeee", "#555555", "#8e44ad", "#c0392b", "#e67e22", "#f1c40f", "#2e86de"};
constexpr const char* kNotes[kPortCats] = {
    "no socket holds the port",
    "net.ipv4.ip_local_reserved_ports (connect() skips it)",
    "bound by bind() or listen(), no connection (connect() autobind skips it)",
    "TIME_WAIT sock (60 s; ends on a timer-wheel tick)",
    "closing: FIN_WAIT1, FIN_WAIT2 (also as a TW sock), CLOSING, LAST_ACK",
    "connecting: SYN_SENT, SYN_RECV",
    "ESTABLISHED or CLOSE_WAIT"};

port_cat sock_cat(const net::sock& s) {
  using net::tcp_state;
  switch (s.state) {
    case tcp_state::SYN_SENT: case tcp_state::SYN_RECV: case tcp_state::NEW_SYN_RECV: return port_cat::connecting;
    case tcp_state::ESTABLISHED: case tcp_state::CLOSE_WAIT: return port_cat::established;
    case tcp_state::FIN_WAIT1: case tcp_state::FIN_WAIT2: case tcp_state::CLOSING: case tcp_state::LAST_ACK:
      return port_cat::closing;
    case tcp_state::TIME_WAIT:
      return s.tw_substate == tcp_state::FIN_WAIT2 ? port_cat::closing : port_cat::time_wait;
    case tcp_state::LISTEN: case tcp_state::CLOSE: return port_cat::bound;
  }
  return port_cat::bound;
}
}  // namespace

port_cat PortMap::state_of(const net::world& w, uint16_t port) const {
  const net::netns& ns = w.nets[o_.ns];
  const uint32_t tb = ns.bhash[port];
  port_cat best = port_cat::free;
  if (tb != net::kNone) {
    for (uint32_t t2 = w.tbs[tb].bhash2; t2 != net::kNone; t2 = w.tb2s[t2].next)
      for (net::sock_id s = w.tb2s[t2].owners; s != net::kNone; s = w.sk(s).bind_next) {
        const net::sock& sk = w.sk(s);
        if (!sk.alive) continue;
        port_cat c = sk.hashed ? sock_cat(sk) : port_cat::bound;
        // Per destination: a connection to another peer leaves the port free for this one.
        if (o_.dest && sk.hashed && !(sk.daddr == o_.dest->addr && sk.dport == o_.dest->port)) c = port_cat::free;
        best = std::max(best, c);
      }
  }
  if (best == port_cat::free && ns.sys.ip_local_reserved_ports.test(port)) best = port_cat::reserved;
  return best;
}

void PortMap::mark(const net::world& w, uint16_t ns, uint16_t port) {
  if (!started_) {  // the first event: the range and the ports' states at t = 0
    started_ = true;
    const net::netns& n = w.nets[o_.ns];
    lo_ = o_.ports ? o_.ports->first : n.sys.ip_local_port_range_lo;
    hi_ = o_.ports ? o_.ports->second : n.sys.ip_local_port_range_hi;
    now_.assign(size_t(hi_ - lo_) + 1, port_cat::free);
    is_dirty_.assign(now_.size(), false);
    for (uint32_t p = lo_; p <= hi_; ++p)
      if (const port_cat c = state_of(w, uint16_t(p)); c != port_cat::free) {
        now_[p - lo_] = c;
        changes_.push_back({0, uint16_t(p), c});
      }
  }
  const bool mine = ns == o_.ns && port >= lo_ && port <= hi_;
  if (w.now != dirty_at_) {  // tables are consistent between instants: settle the last one
    for (uint16_t q : dirty_) {
      is_dirty_[q - lo_] = false;
      if (mine && q == port) continue;  // already changed at this instant: recomputed below
      const port_cat c = state_of(w, q);
      if (c != now_[q - lo_]) {
        now_[q - lo_] = c;
        changes_.push_back({dirty_at_, q, c});
      }
    }
    dirty_.clear();
    dirty_at_ = w.now;
  }
  if (!mine) return;
  const port_cat c = state_of(w, port);
  if (c != now_[port - lo_]) {
    now_[port - lo_] = c;
    changes_.push_back({w.now, port, c});
  }
  if (!is_dirty_[port - lo_]) {
    is_dirty_[port - lo_] = true;
    dirty_.push_back(port);
  }
}

void PortMap::settle(const net::world& w) {
  if (started_ && !dirty_.empty() && w.now != dirty_at_) mark(w, uint16_t(o_.ns + 1), 0);  // settles only
}

void PortMap::ehash(const net::world& w, net::table_op, net::sock_id id) { mark(w, w.sk(id).netns, w.sk(id).num); }
void PortMap::state_change(const net::world& w, net::sock_id id, net::tcp_state, net::tcp_state) {
  mark(w, w.sk(id).netns, w.sk(id).num);
}

void PortMap::bind_bucket(const net::world& w, net::table_op, uint32_t tb) { mark(w, w.tbs[tb].netns, w.tbs[tb].port); }

void PortMap::bind2_bucket(const net::world& w, net::table_op, uint32_t tb2) {
  const auto& b = w.tbs[w.tb2s[tb2].tb];
  mark(w, b.netns, b.port);
}

void PortMap::finish(const net::world& w, Nanos end) {
  if (!started_) mark(w, uint16_t(o_.ns + 1), 0);  // nothing happened: still the t = 0 states
  // The last instant's changes are final: recompute the ports it touched.
  for (uint16_t q : dirty_) {
    const port_cat c = state_of(w, q);
    if (c != now_[q - lo_]) {
      now_[q - lo_] = c;
      changes_.push_back({dirty_at_, q, c});
    }
  }
  dirty_.clear();
  end_ = std::max<Nanos>(end, 1);
}

PortGrid PortMap::grid() const {
  PortGrid g;
  g.lo = lo_;
  g.hi = hi_;
  const uint32_t n = uint32_t(hi_ - lo_) + 1;
  g.per_row = (n + o_.max_rows - 1) / o_.max_rows;
  g.rows = (n + g.per_row - 1) / g.per_row;
  g.cols = std::max<uint32_t>(1, o_.columns);
  g.end = end_;
  std::vector<std::array<double, kPortCats>> acc(size_t(g.rows) * g.cols, std::array<double, kPortCats>{});
  std::vector<Change> ch = changes_;
  std::stable_sort(ch.begin(), ch.end(), [](const Change& a, const Change& b) { return a.port < b.port; });
  const double colw = double(end_) / g.cols;
  auto add = [&](uint32_t port, Nanos t0, Nanos t1, port_cat c) {
    if (t1 <= t0) return;
    const uint32_t row = (port - lo_) / g.per_row;
    const uint32_t c0 = uint32_t(std::min<double>(g.cols - 1, std::floor(double(t0) / colw)));
    const uint32_t c1 = uint32_t(std::min<double>(g.cols - 1, std::floor(double(t1 - 1) / colw)));
    for (uint32_t col = c0; col <= c1; ++col) {
      const double a = std::max(double(t0), col * colw), b = std::min(double(t1), (col + 1) * colw);
      if (b > a) acc[size_t(row) * g.cols + col][size_t(c)] += b - a;
    }
  };
  size_t i = 0;
  for (uint32_t p = lo_; p <= hi_; ++p) {
    Nanos t = 0;
    port_cat c = port_cat::free;
    for (; i < ch.size() && ch[i].port == p; ++i) {
      add(p, t, ch[i].t, c);
      t = ch[i].t;
      c = ch[i].cat;
    }
    add(p, t, end_, c);
  }
  g.cell.resize(acc.size());
  g.share.resize(acc.size());
  for (size_t k = 0; k < acc.size(); ++k) {
    double total = 0;
    for (double v : acc[k]) total += v;
    // Port-time not covered (a partial last row) counts as nothing; a cell with no time is free.
    uint8_t best = 0;
    for (int c = 1; c < kPortCats; ++c)
      if (acc[k][size_t(c)] >= acc[k][best] && acc[k][size_t(c)] > 0) best = uint8_t(c);
    g.cell[k] = best;
    for (int c = 0; c < kPortCats; ++c)
      g.share[k][size_t(c)] = total > 0 ? uint8_t(std::lround(100.0 * acc[k][size_t(c)] / total)) : 0;
    ++g.cells_of[best];
  }
  return g;
}

void write_heatmap_json(std::FILE* f, const PortGrid& g, const std::string& title) {
  fmt::print(f, "{{\"title\":{},\"lo\":{},\"hi\":{},\"per_row\":{},\"rows\":{},\"cols\":{},\"end_ns\":{},\"cats\":[", json_str(title),
             g.lo, g.hi, g.per_row, g.rows, g.cols, g.end);
  for (int c = 0; c < kPortCats; ++c) fmt::print(f, "{}{}", c ? "," : "", json_str(port_cat_name(port_cat(c))));
  fmt::print(f, "],\"colors\":[");
  for (int c = 0; c < kPortCats; ++c) fmt::print(f, "{}\"{}\"", c ? "," : "", kColors[c]);
  fmt::print(f, "],\"notes\":[");
  for (int c = 0; c < kPortCats; ++c) fmt::print(f, "{}{}", c ? "," : "", json_str(kNotes[c]));
  fmt::print(f, "],\"cells_of\":[");
  for (int c = 0; c < kPortCats; ++c) fmt::print(f, "{}{}", c ? "," : "", g.cells_of[size_t(c)]);
  // One character per cell, row-major: '0' + port_cat.
  fmt::print(f, "],\n\"grid\":\"");
  for (uint8_t c : g.cell) std::fputc('0' + c, f);
  fmt::print(f, "\"");
  // Shares, when the grid is small enough to carry them: per cell 7 characters, 'A' + share/5.
  if (g.cell.size() <= 100000) {
    fmt::print(f, ",\n\"share\":\"");
    for (const auto& s : g.share)
      for (uint8_t v : s) std::fputc('A' + (v + 2) / 5, f);
    fmt::print(f, "\"");
  }
  fmt::print(f, "}}");
}

void write_heatmap_html(std::FILE* f, const PortGrid& g, const std::string& title) {
  fmt::print(f, R"HTML(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }}
h1 {{ font-size: 18px; margin: 0 0 8px; }}
#wrap {{ position: relative; display: inline-block; }}
#tip {{ position: absolute; pointer-events: none; background: rgba(30,30,30,.92); color: #fff; padding: 6px 8px;
        border-radius: 4px; font-size: 12px; white-space: pre; display: none; }}
#legend span.sw {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px -2px 12px; border: 1px solid #999; }}
#drawn {{ display: none; }}
</style></head><body>
<h1>{}</h1>
<div id="wrap"><canvas id="map"></canvas><div id="tip"></div></div>
<div id="legend"></div>
<pre id="drawn"></pre>
<script id="data" type="application/json">)HTML",
             title, title);
  write_heatmap_json(f, g, title);
  fmt::print(f, "{}", R"HTML(</script>
<script>
"use strict";
(function () {
  const d = JSON.parse(document.getElementById("data").textContent);
  const cv = document.getElementById("map"), ctx = cv.getContext("2d");
  const L = 70, T = 10, R = 10, B = 40;
  const cw = Math.max(1, Math.floor(1000 / d.cols)), ch = Math.max(1, Math.min(16, Math.floor(600 / d.rows)));
  const W = d.cols * cw, H = d.rows * ch;
  cv.width = L + W + R; cv.height = T + H + B;
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, cv.width, cv.height);
  const counts = new Array(d.cats.length).fill(0);
  for (let r = 0; r < d.rows; r++)
    for (let c = 0; c < d.cols; c++) {
      const k = d.grid.charCodeAt(r * d.cols + c) - 48;
      ctx.fillStyle = d.colors[k];
      ctx.fillRect(L + c * cw, T + r * ch, cw, ch);
      counts[k]++;
    }
  // Axes: time (s) below, ports on the left.
  ctx.strokeStyle = "#333"; ctx.strokeRect(L - 0.5, T - 0.5, W + 1, H + 1);
  ctx.fillStyle = "#222"; ctx.font = "12px sans-serif"; ctx.textAlign = "center";
  const endS = d.end_ns / 1e9, nx = 8;
  for (let i = 0; i <= nx; i++) {
    const x = L + (W * i) / nx, t = (endS * i) / nx;
    ctx.fillRect(x, T + H, 1, 4);
    ctx.fillText(t >= 10 ? t.toFixed(0) : t.toPrecision(2), x, T + H + 16);
  }
  ctx.fillText("virtual time (s)", L + W / 2, T + H + 32);
  ctx.textAlign = "right";
  const ny = d.rows <= 16 ? d.rows - 1 : 8;
  for (let i = 0; i <= ny; i++) {
    const r = Math.min(d.rows - 1, Math.round(((d.rows - 1) * i) / Math.max(1, ny)));
    const y = T + r * ch + ch / 2;
    ctx.fillRect(L - 4, y, 4, 1);
    ctx.fillText(String(d.lo + r * d.per_row), L - 6, y + 4);
  }
  const lg = document.getElementById("legend");
  d.cats.forEach((name, k) => {
    const s = document.createElement("span"); s.className = "sw"; s.style.background = d.colors[k];
    lg.appendChild(s);
    const t = document.createElement("span"); t.textContent = name; t.title = d.notes[k];
    lg.appendChild(t);
  });
  const info = document.createElement("div");
  info.textContent = "ports " + d.lo + "\u2013" + d.hi + (d.per_row > 1 ? " (" + d.per_row + " ports per row)" : "") +
      ", " + d.cols + " columns of " + (endS / d.cols).toPrecision(3) + " s; colour = the state with the largest share of the cell";
  lg.appendChild(info);
  // What the canvas shows, read back from its pixels at each cell's centre.
  const img = ctx.getImageData(0, 0, cv.width, cv.height).data;
  const rgb = d.colors.map((h) => [1, 3, 5].map((i) => parseInt(h.substr(i, 2), 16)));
  const pixels = new Array(d.cats.length).fill(0);
  for (let r = 0; r < d.rows; r++)
    for (let c = 0; c < d.cols; c++) {
      const x = L + c * cw + (cw >> 1), y = T + r * ch + (ch >> 1), o = (y * cv.width + x) * 4;
      const k = rgb.findIndex((p) => p[0] === img[o] && p[1] === img[o + 1] && p[2] === img[o + 2]);
      if (k >= 0) pixels[k]++;
    }
  const out = {}, px = {};
  d.cats.forEach((n, k) => { out[n] = counts[k]; px[n] = pixels[k]; });
  document.getElementById("drawn").textContent = JSON.stringify({ rows: d.rows, cols: d.cols, cells: out, pixels: px });
  const tip = document.getElementById("tip");
  cv.addEventListener("mousemove", (e) => {
    const b = cv.getBoundingClientRect();
    const c = Math.floor((e.clientX - b.left - L) / cw), r = Math.floor((e.clientY - b.top - T) / ch);
    if (c < 0 || r < 0 || c >= d.cols || r >= d.rows) { tip.style.display = "none"; return; }
    const k = r * d.cols + c, p0 = d.lo + r * d.per_row, p1 = Math.min(d.hi, p0 + d.per_row - 1);
    const t0 = (endS * c) / d.cols, t1 = (endS * (c + 1)) / d.cols;
    let s = (p0 === p1 ? "port " + p0 : "ports " + p0 + "\u2013" + p1) + "\n" + t0.toFixed(3) + "\u2013" + t1.toFixed(3) + " s\n" +
        d.cats[d.grid.charCodeAt(k) - 48];
    if (d.share) {
      const parts = [];
      for (let j = 0; j < d.cats.length; j++) {
        const v = (d.share.charCodeAt(k * d.cats.length + j) - 65) * 5;
        if (v > 0) parts.push(d.cats[j] + " " + v + "%");
      }
      s += "\n" + parts.join(", ");
    }
    tip.textContent = s; tip.style.display = "block";
    tip.style.left = (e.clientX - b.left + 12) + "px"; tip.style.top = (e.clientY - b.top + 12) + "px";
  });
  cv.addEventListener("mouseleave", () => { tip.style.display = "none"; });
})();
</script>
</body></html>
)HTML");
}

}  // namespace portsim::trace
