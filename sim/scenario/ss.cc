// `ss -tan` / `ss -s` for the model. Which sockets appear, and their queues, follow
// net/ipv4/inet_diag.c and tcp_diag.c (6.18): listeners and every ehash entry (request, full and
// TIME_WAIT socks); a socket that is only bound is not dumped. tcp_diag_get_info(): LISTEN shows
// Recv-Q = accept queue length, Send-Q = backlog; otherwise Recv-Q = rcv_nxt - copied_seq (1 in
// CLOSE-WAIT: the peer's FIN, measured live) and Send-Q = write_seq - snd_una (1 while our SYN
// or FIN is unacknowledged: tcp_connect() and tcp_send_fin() advance write_seq). No data moves in
// the model, so every other queue is 0. A TIME_WAIT sock of substate FIN_WAIT2 is shown as
// FIN-WAIT-2 (inet_diag reports tw_substate). The layout follows iproute2's ss.c as measured
// with ss 6.x in a namespace (tests/live/ss_tan.txt).
#include "portsim/scenario/ss.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

namespace portsim::scenario {

using net::tcp_state;

namespace {

// iproute2 misc/ss.c: sstate_name[].
std::string_view ss_state_name(tcp_state s) {
  switch (s) {
    case tcp_state::ESTABLISHED: return "ESTAB";
    case tcp_state::SYN_SENT: return "SYN-SENT";
    case tcp_state::SYN_RECV: case tcp_state::NEW_SYN_RECV: return "SYN-RECV";
    case tcp_state::FIN_WAIT1: return "FIN-WAIT-1";
    case tcp_state::FIN_WAIT2: return "FIN-WAIT-2";
    case tcp_state::TIME_WAIT: return "TIME-WAIT";
    case tcp_state::CLOSE: return "UNCONN";
    case tcp_state::CLOSE_WAIT: return "CLOSE-WAIT";
    case tcp_state::LAST_ACK: return "LAST-ACK";
    case tcp_state::LISTEN: return "LISTEN";
    case tcp_state::CLOSING: return "CLOSING";
  }
  return "UNKNOWN";
}

uint32_t bit(tcp_state s) { return 1u << unsigned(s); }

// The state ss reports: a TW sock's substate.
tcp_state shown_state(const net::sock& s) {
  return s.state == tcp_state::TIME_WAIT && s.tw_substate == tcp_state::FIN_WAIT2 ? tcp_state::FIN_WAIT2 : s.state;
}

std::string addr_str(const net::sock& s, const net::inet_addr& a, bool any_is_star) {
  if (any_is_star && a.is_any()) return s.v6 ? "[::]" : "0.0.0.0";
  if (!a.is_v4()) return "[" + net::to_string(a) + "]";  // ss brackets IPv6 addresses
  return s.v6 ? "[::ffff:" + net::to_string(a) + "]" : net::to_string(a);  // v4-mapped on AF_INET6
}

struct Row {
  std::string state, recvq, sendq, laddr, lport, raddr, rport;
  uint16_t sort_port;
  bool listen;
};

void print_table(std::FILE* out, const net::world& w, const net::netns& ns, const SsOptions& o) {
  std::vector<Row> rows;
  for (net::sock_id id = 0; id < w.socks.size(); ++id) {
    const net::sock& s = w.sk(id);
    if (!s.alive || s.netns != ns.id || s.udp) continue;  // `ss -tan`: TCP sockets only (-t)
    const bool listening = s.state == tcp_state::LISTEN;
    if (!listening && !s.hashed) continue;  // bound-only and closed sockets are not dumped
    const tcp_state st = shown_state(s);
    if (!(o.states & bit(st))) continue;
    Row r;
    r.state = ss_state_name(st);
    r.listen = listening;
    r.sort_port = s.num;
    if (listening) {
      auto it = w.listening.find(id);
      r.recvq = std::to_string(it == w.listening.end() ? 0 : it->second.accept_queue.size());
      r.sendq = std::to_string(it == w.listening.end() ? 0 : it->second.backlog);
      r.raddr = s.v6 ? "[::]" : "0.0.0.0";
      r.rport = "*";
    } else {
      r.recvq = st == tcp_state::CLOSE_WAIT ? "1" : "0";
      const bool in_flight = st == tcp_state::SYN_SENT || st == tcp_state::FIN_WAIT1 || st == tcp_state::CLOSING ||
                             st == tcp_state::LAST_ACK;
      r.sendq = in_flight ? "1" : "0";
      r.raddr = addr_str(s, s.daddr, false);
      r.rport = std::to_string(s.dport);
    }
    r.laddr = addr_str(s, s.rcv_saddr, true);
    r.lport = std::to_string(s.num);
    rows.push_back(std::move(r));
  }
  // ss walks the listening hash first, then ehash; bucket order is not modelled, so by port.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.listen != b.listen) return a.listen;
    if (a.sort_port != b.sort_port) return a.sort_port < b.sort_port;
    return a.raddr + a.rport < b.raddr + b.rport;
  });
  size_t ws = 5, wl = 13, wlp = 4, wr = 12, wrp = 4;
  for (const Row& r : rows) {
    ws = std::max(ws, r.state.size());
    wl = std::max(wl, r.laddr.size());
    wlp = std::max(wlp, r.lport.size());
    wr = std::max(wr, r.raddr.size());
    wrp = std::max(wrp, r.rport.size());
  }
  const bool show_state = !o.state_given;
  std::string head = show_state ? fmt::format("{:<{}} ", "State", ws) : std::string();
  head += fmt::format("Recv-Q Send-Q {:>{}}:{:<{}} {:>{}}:{:<{}}Process", "Local Address", wl, "Port", wlp, "Peer Address",
                      wr, "Port", wrp);
  fmt::print(out, "{}\n", head);
  for (const Row& r : rows) {
    std::string line = show_state ? fmt::format("{:<{}} ", r.state, ws) : std::string();
    line += fmt::format("{:<6} {:<6} {:>{}}:{:<{}} {:>{}}:{}", r.recvq, r.sendq, r.laddr, wl, r.lport, wlp, r.raddr, wr, r.rport);
    fmt::print(out, "{}\n", line);
  }
}

// iproute2 misc/ss.c: print_summary(), from /proc/net/sockstat (alloc, inuse, orphan, tw) and
// /proc/net/snmp CurrEstab. Model: alloc = full sockets (request socks and TW socks are not
// full sockets), inuse = those hashed or listening, per family.
void print_summary(std::FILE* out, const net::world& w, const net::netns& ns) {
  uint64_t alloc = 0, orphans = 0, tws = 0, estab = 0, hashed4 = 0, hashed6 = 0, app = 0;
  for (const net::sock& s : w.socks) {
    if (!s.alive || s.netns != ns.id || s.udp) continue;  // TCP counts only; UDP row stays 0 (U)
    if (s.state == tcp_state::TIME_WAIT) { ++tws; continue; }
    if (s.state == tcp_state::SYN_RECV) continue;  // a request sock
    ++alloc;
    if (s.orphan) ++orphans;
    else ++app;
    if (s.state == tcp_state::ESTABLISHED || s.state == tcp_state::CLOSE_WAIT) ++estab;
    if (s.hashed || s.state == tcp_state::LISTEN) ++(s.v6 ? hashed6 : hashed4);
  }
  fmt::print(out, "Total: {}\n", app);
  fmt::print(out, "TCP:   {} (estab {}, closed {}, orphaned {}, timewait {})\n\n", alloc + tws, estab,
             int64_t(alloc) - int64_t(hashed4 + hashed6 - tws), orphans, tws);
  fmt::print(out, "Transport Total     IP        IPv6\n");
  fmt::print(out, "RAW\t  {:<9} {:<9} {:<9}\n", 0, 0, 0);
  fmt::print(out, "UDP\t  {:<9} {:<9} {:<9}\n", 0, 0, 0);
  fmt::print(out, "TCP\t  {:<9} {:<9} {:<9}\n", hashed4 + hashed6, hashed4, hashed6);
  fmt::print(out, "INET\t  {:<9} {:<9} {:<9}\n", hashed4 + hashed6, hashed4, hashed6);
  fmt::print(out, "FRAG\t  {:<9} {:<9} {:<9}\n", 0, 0, 0);
}

}  // namespace

std::optional<uint32_t> ss_state_mask(std::string_view n) {
  const uint32_t all = bit(tcp_state::ESTABLISHED) | bit(tcp_state::SYN_SENT) | bit(tcp_state::SYN_RECV) |
                       bit(tcp_state::FIN_WAIT1) | bit(tcp_state::FIN_WAIT2) | bit(tcp_state::TIME_WAIT) |
                       bit(tcp_state::CLOSE) | bit(tcp_state::CLOSE_WAIT) | bit(tcp_state::LAST_ACK) |
                       bit(tcp_state::LISTEN) | bit(tcp_state::CLOSING);
  if (n == "established") return bit(tcp_state::ESTABLISHED);
  if (n == "syn-sent") return bit(tcp_state::SYN_SENT);
  if (n == "syn-recv") return bit(tcp_state::SYN_RECV);
  if (n == "fin-wait-1") return bit(tcp_state::FIN_WAIT1);
  if (n == "fin-wait-2") return bit(tcp_state::FIN_WAIT2);
  if (n == "time-wait") return bit(tcp_state::TIME_WAIT);
  if (n == "closed") return bit(tcp_state::CLOSE);
  if (n == "close-wait") return bit(tcp_state::CLOSE_WAIT);
  if (n == "last-ack") return bit(tcp_state::LAST_ACK);
  if (n == "listening") return bit(tcp_state::LISTEN);
  if (n == "closing") return bit(tcp_state::CLOSING);
  if (n == "all") return all;
  if (n == "connected") return all & ~(bit(tcp_state::LISTEN) | bit(tcp_state::CLOSE));
  if (n == "synchronized") return all & ~(bit(tcp_state::LISTEN) | bit(tcp_state::CLOSE) | bit(tcp_state::SYN_SENT));
  if (n == "bucket") return bit(tcp_state::SYN_RECV) | bit(tcp_state::TIME_WAIT);
  if (n == "big") return all & ~(bit(tcp_state::SYN_RECV) | bit(tcp_state::TIME_WAIT));
  return std::nullopt;
}

void print_ss(std::FILE* out, const net::world& w, const SsOptions& o, Nanos t) {
  const bool many = (o.host.empty() && w.nets.size() > 1) || o.label;
  for (const net::netns& ns : w.nets) {
    if (!o.host.empty() && ns.name != o.host) continue;
    if (many) fmt::print(out, "# host {} at {}\n", ns.name, format_duration(t));
    if (o.summary) print_summary(out, w, ns);
    else print_table(out, w, ns, o);
    if (many) fmt::print(out, "\n");
  }
}

}  // namespace portsim::scenario
