#include "portsim/trace/jsonl.h"

#include <fmt/format.h>

#include <cstdio>
#include <iterator>

#include "portsim/net/netns.h"
#include "portsim/net/tcp.h"

namespace portsim::trace {

std::string json_str(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += c;
    }
  }
  return out + "\"";
}

JsonlTrace::JsonlTrace(std::string path, NameFn name_of)
    : path_(std::move(path)), name_of_(std::move(name_of)) {
  if (path_.empty()) return;
  if (out_.open(path_)) f_ = out_.get();
}

JsonlTrace::~JsonlTrace() { abandon(); }

bool JsonlTrace::commit() {
  if (path_.empty()) return true;
  f_ = nullptr;
  return out_.commit();  // false (and the temporary file removed) after a write error
}

void JsonlTrace::abandon() {
  f_ = nullptr;
  out_.abandon();
}

void JsonlTrace::record(uint64_t t, std::string_view ev, std::string_view body) {
  if (!f_) return;
  // Formatted in memory, written without exceptions: a write error (ENOSPC, EFBIG, EPIPE) is
  // remembered and reported by commit().
  fmt::memory_buffer buf;
  fmt::format_to(std::back_inserter(buf), "{{\"t\":{},\"ev\":\"{}\",{}}}\n", t, ev, body);
  out_.write(buf.data(), buf.size());
  if (out_.error()) f_ = nullptr;  // nothing more is formatted; commit() reports the error
}

static const char* op_word(net::table_op op, const char* create, const char* destroy) {
  switch (op) {
    case net::table_op::create: return create;
    case net::table_op::destroy: return destroy;
    case net::table_op::update: return "update";
  }
  return "?";
}

void JsonlTrace::bind_bucket(const net::world& w, net::table_op op, uint32_t tb) {
  if (!tables()) return;
  const auto& b = w.tbs[tb];
  record(w.now, "bhash",
         fmt::format("\"op\":\"{}\",\"host\":{},\"port\":{},\"fastreuse\":{},\"fastreuseport\":{}",
                     op_word(op, "create", "destroy"), json_str(w.nets[b.netns].name), b.port,
                     int(b.fastreuse), int(b.fastreuseport)));
}

void JsonlTrace::bind2_bucket(const net::world& w, net::table_op op, uint32_t t2) {
  if (!tables()) return;
  const auto& b2 = w.tb2s[t2];
  const auto& b = w.tbs[b2.tb];
  record(w.now, "bhash2",
         fmt::format("\"op\":\"{}\",\"host\":{},\"port\":{},\"addr\":\"{}\",\"fastreuse\":{},\"fastreuseport\":{}",
                     op_word(op, "create", "destroy"), json_str(w.nets[b.netns].name), b.port,
                     net::to_string(b2.rcv_saddr), int(b2.fastreuse), int(b2.fastreuseport)));
}

void JsonlTrace::ehash(const net::world& w, net::table_op op, net::sock_id id) {
  if (!tables()) return;
  const auto& s = w.sk(id);
  record(w.now, "ehash",
         fmt::format("\"op\":\"{}\",\"host\":{},\"sk\":{},\"sock\":{},\"local\":\"{}\",\"remote\":\"{}\",\"state\":\"{}\"",
                     op_word(op, "insert", "remove"), json_str(w.nets[s.netns].name), sk_id(id),
                     json_str(name_of_(id)), net::to_string(net::endpoint{s.rcv_saddr, s.num}, s.v6),
                     net::to_string(net::endpoint{s.daddr, s.dport}, s.v6), net::tcp_state_name(s.state)));
}

void JsonlTrace::state_change(const net::world& w, net::sock_id id, net::tcp_state from, net::tcp_state to) {
  if (explainer_) explainer_->touch(name_of_(id));
  if (explaining()) {
    const auto& s = w.sk(id);
    std::string_view to_name = net::tcp_state_name(to);
    if (to == net::tcp_state::TIME_WAIT && s.tw_substate == net::tcp_state::FIN_WAIT2) to_name = "FIN_WAIT2 (TW sock)";
    explain(to == net::tcp_state::TIME_WAIT ? "tcp_time_wait" : "tcp_set_state",
            fmt::format("{} {} {} -> {}", w.nets[s.netns].name, name_of_(id).empty() ? fmt::format("sk{}", sk_id(id)) : name_of_(id),
                        net::tcp_state_name(from), to_name));
  }
  if (!tables()) return;
  const auto& s = w.sk(id);
  std::string_view to_name = net::tcp_state_name(to);
  if (to == net::tcp_state::TIME_WAIT && s.tw_substate == net::tcp_state::FIN_WAIT2) to_name = "FIN_WAIT2";
  record(w.now, "state",
         fmt::format("\"host\":{},\"sk\":{},\"sock\":{},\"from\":\"{}\",\"to\":\"{}\"",
                     json_str(w.nets[s.netns].name), sk_id(id), json_str(name_of_(id)),
                     net::tcp_state_name(from), to_name));
}

void JsonlTrace::segment(const net::world& w, const net::segment& seg, Nanos arrive, net::seg_fate fate) {
  if (!tables()) return;
  auto host = [&](uint16_t ns) { return ns == net::kExternalNs ? std::string("\"(external)\"") : json_str(w.nets[ns].name); };
  // "flags": TCP flags, "UDP", or the ICMP error; seq/ack only for TCP.
  const std::string flags = seg.proto == net::kProtoUdp    ? std::string("UDP")
                            : seg.proto == net::kProtoIcmp ? std::string("ICMP_PORT_UNREACH")
                                                           : std::string(net::tcp_flags_str(seg.flags));
  record(w.now, "pkt",
         fmt::format("\"from\":{},\"to\":{},\"src\":\"{}\",\"dst\":\"{}\",\"flags\":\"{}\"{},\"arrive\":{}{}",
                     host(seg.from_ns), host(seg.to_ns), net::to_string(net::endpoint{seg.saddr, seg.sport}),
                     net::to_string(net::endpoint{seg.daddr, seg.dport}), flags,
                     seg.proto ? std::string() : fmt::format(",\"seq\":{},\"ack\":{}", seg.seq, seg.ack), arrive,
                     fate == net::seg_fate::lost       ? ",\"lost\":true"
                     : fate == net::seg_fate::no_route ? ",\"lost\":\"no route\""
                                                       : ""));
}

void JsonlTrace::timer(const net::world& w, net::timer_kind kind, net::sock_id id) {
  if (!tables()) return;
  record(w.now, "timer", fmt::format("\"kind\":\"{}\",\"sk\":{},\"sock\":{}",
                                     kind == net::timer_kind::timewait    ? "timewait"
                                     : kind == net::timer_kind::keepalive ? "keepalive"
                                                                          : "retransmit",
                                     sk_id(id), json_str(name_of_(id))));
}

void JsonlTrace::explain(std::string_view fn, std::string_view what) {
  if (explainer_) explainer_->step(fn, what);
}

std::string JsonlTrace::sock_name(const net::world&, net::sock_id id) const {
  std::string n = name_of_(id);
  return n.empty() ? fmt::format("sk{}", sk_id(id)) : n;
}

}  // namespace portsim::trace
