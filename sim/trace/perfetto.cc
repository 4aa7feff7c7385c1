#include "portsim/trace/perfetto.h"

#include <fmt/format.h>

#include <algorithm>

#include "portsim/base/errno_name.h"

#include "portsim/net/netns.h"
#include "portsim/trace/jsonl.h"

namespace portsim::trace {

namespace {
std::string us(Nanos t) { return fmt::format("{}.{:03}", t / 1000, t % 1000); }  // µs, exact
}  // namespace

PerfettoWriter::PerfettoWriter(std::string path, NameFn name_of) : name_of_(std::move(name_of)) {
  if (!out_.open(path)) return;
  f_ = out_.get();
  const std::string head = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
  out_.write(head.data(), head.size());
}

void PerfettoWriter::event(const std::string& json) {
  if (!f_) return;
  if (!first_) out_.write(",\n", 2);
  first_ = false;
  out_.write(json.data(), json.size());
}

void PerfettoWriter::touch(const net::world& w, uint16_t ns) {
  if (hosts_.size() < w.nets.size()) {
    hosts_.resize(w.nets.size());
    host_names_.clear();
    for (const auto& n : w.nets) host_names_.push_back(n.name);
  }
  if (w.now != counters_at_) flush_counters(counters_at_);
  counters_at_ = w.now;
  hosts_[ns].dirty = true;
}

// One counter sample per host and instant in which its counts changed (the last values).
void PerfettoWriter::flush_counters(Nanos at) {
  for (size_t i = 0; i < hosts_.size(); ++i) {
    HostCount& h = hosts_[i];
    if (!h.dirty) continue;
    h.dirty = false;
    event(fmt::format(R"({{"ph":"C","name":"sockets","pid":{},"tid":0,"ts":{},"args":{{"ESTABLISHED":{},"TIME_WAIT":{}}}}})",
                      i + 1, us(at), h.established, h.time_wait));
    event(fmt::format(R"({{"ph":"C","name":"ports in use","pid":{},"tid":0,"ts":{},"args":{{"ports":{}}}}})", i + 1,
                      us(at), h.ports));
  }
}

PerfettoWriter::Track& PerfettoWriter::track(const net::world& w, net::sock_id id) {
  auto it = tracks_.find(id);
  if (it == tracks_.end()) {
    it = tracks_.emplace(id, Track{next_tid_++, w.sk(id).netns, "", w.now}).first;
  }
  return it->second;
}

void PerfettoWriter::sock_alloc(const net::world& w, net::sock_id id) {
  if (auto it = tracks_.find(id); it != tracks_.end()) {  // the old socket of this id is gone
    close_slice(it->second, w.now);
    tracks_.erase(it);
  }
}

void PerfettoWriter::close_slice(Track& t, Nanos now) {
  if (t.state.empty()) return;
  event(fmt::format(R"({{"ph":"X","cat":"state","name":"{}","pid":{},"tid":{},"ts":{},"dur":{}}})", t.state,
                    t.ns + 1, t.tid, us(t.since), us(now - t.since)));
  t.state.clear();
}

void PerfettoWriter::state_change(const net::world& w, net::sock_id id, net::tcp_state from, net::tcp_state to) {
  const net::sock& s = w.sk(id);
  Track& t = track(w, id);
  close_slice(t, w.now);
  if (to != net::tcp_state::CLOSE) {
    t.state = to == net::tcp_state::TIME_WAIT && s.tw_substate == net::tcp_state::FIN_WAIT2
                  ? "FIN_WAIT2 (TW sock)"
                  : std::string(net::tcp_state_name(to));
    t.since = w.now;
  }
  // A name for the track: the scenario's, and the 4-tuple once there is one.
  std::string name = name_of_(id);
  if (name.empty()) name = fmt::format("sk{}", id);
  if (s.num) name += fmt::format(" {}", net::to_string(net::endpoint{s.rcv_saddr, s.num}));
  if (s.dport) name += fmt::format(" > {}", net::to_string(net::endpoint{s.daddr, s.dport}));
  tid_names_[t.tid] = {s.netns, name};
  touch(w, s.netns);
  HostCount& h = hosts_[s.netns];
  if (to == net::tcp_state::ESTABLISHED) ++h.established;
  if (from == net::tcp_state::ESTABLISHED) --h.established;
  if (to == net::tcp_state::TIME_WAIT && from != net::tcp_state::TIME_WAIT) ++h.time_wait;
  if (from == net::tcp_state::TIME_WAIT && to != net::tcp_state::TIME_WAIT) --h.time_wait;
}

void PerfettoWriter::bind_bucket(const net::world& w, net::table_op op, uint32_t tb) {
  if (op == net::table_op::update) return;
  const uint16_t ns = w.tbs[tb].netns;
  touch(w, ns);
  hosts_[ns].ports += op == net::table_op::create ? 1 : -1;
}

void PerfettoWriter::call(const net::world& w, const net::call_event& c) {
  const bool on_sock = c.sk != net::kNone && c.sk < w.socks.size() && w.sk(c.sk).alive;
  const uint32_t tid = on_sock ? track(w, c.sk).tid : 0;
  const std::string name = c.err ? fmt::format("{} = -1 {}", c.op, errno_name(c.err)) : fmt::format("{} = 0", c.op);
  std::string args = fmt::format(R"("sock":{})", json_str(c.sock));
  if (!c.detail.empty()) args += fmt::format(R"(,"detail":{})", json_str(c.detail));
  if (c.t_start != w.now) args += fmt::format(R"(,"started":{})", us(c.t_start));
  event(fmt::format(R"({{"ph":"i","s":"{}","cat":"{}","name":{},"pid":{},"tid":{},"ts":{},"args":{{{}}}}})",
                    tid ? "t" : "p", c.err ? "error" : "call", json_str(name), c.ns + 1, tid, us(w.now), args));
  if (on_sock && tid_names_.find(tid) == tid_names_.end())
    tid_names_[tid] = {c.ns, c.sock.empty() ? fmt::format("sk{}", c.sk) : std::string(c.sock)};
}

void PerfettoWriter::timer(const net::world& w, net::timer_kind kind, net::sock_id id) {
  const Track& t = track(w, id);
  event(fmt::format(R"({{"ph":"i","s":"t","cat":"timer","name":"{}","pid":{},"tid":{},"ts":{}}})",
                    kind == net::timer_kind::timewait    ? "tw_timer_handler"
                    : kind == net::timer_kind::keepalive ? "tcp_keepalive_timer"
                                                         : "tcp_retransmit_timer",
                    t.ns + 1, t.tid,
                    us(w.now)));
}

void PerfettoWriter::finish(const net::world& w, Nanos end) {
  if (!f_) return;
  flush_counters(counters_at_);
  for (auto& [id, t] : tracks_) close_slice(t, std::max(end, t.since));
  for (size_t i = 0; i < w.nets.size(); ++i)
    event(fmt::format(R"({{"ph":"M","name":"process_name","pid":{},"tid":0,"args":{{"name":{}}}}})", i + 1,
                      json_str("host " + w.nets[i].name)));
  std::vector<std::pair<uint32_t, std::pair<uint16_t, std::string>>> names(tid_names_.begin(), tid_names_.end());
  std::sort(names.begin(), names.end());
  for (const auto& [tid, pn] : names)
    event(fmt::format(R"({{"ph":"M","name":"thread_name","pid":{},"tid":{},"args":{{"name":{}}}}})", pn.first + 1, tid,
                      json_str(pn.second)));
}

bool PerfettoWriter::commit() {
  if (!f_) return false;
  out_.write("\n]}\n", 4);
  f_ = nullptr;
  return out_.commit();
}

}  // namespace portsim::trace
