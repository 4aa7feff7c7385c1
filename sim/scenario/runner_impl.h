// Internal to the scenario runner (runner.cc, wire.cc, workload.cc): the runner's private
// state, shared by the files that implement it. Not a public header.
#pragma once
#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "portsim/base/errno_name.h"
#include "portsim/base/prefault.h"
#include "portsim/net/af_inet.h"
#include "portsim/net/inet_connection_sock.h"
#include "portsim/scenario/name_index.h"
#include "portsim/scenario/runner.h"

namespace portsim::scenario {

namespace runner_detail {
enum EventKind : uint8_t { kCall = 0, kTimer = 1, kPacket = 2, kArrival = 3, kWlClose = 4, kPoolOpen = 5, kPoolClose = 6, kSample = 7, kSs = 8 };
constexpr uint32_t kNoCall = UINT32_MAX;
constexpr size_t kMaxFailuresShown = 20;

// Which name a sock answers to: the call that named it and the repetition.
struct NameRef {
  uint32_t call = kNoCall;
  uint32_t k = 0;
  bool as = false;  // named by an accept's "as"
};


}  // namespace runner_detail
using namespace runner_detail;

// The outcome of one scenario call, as recorded and checked.
// The port searches' details are valid only under their flag and are not constructed with the
// outcome (a call fills one of them at most, ~150 bytes): whoever sets a flag writes the
// details first (run_call resets bi / ui before the search that fills them; a connect's
// search resets ci itself, inet_stream_connect).
struct Runner::Outcome {
  int err = 0;
  bool has_connect = false, has_bind = false;
  bool udp = false, has_udp = false;  // a UDP socket's call; has_udp: ui holds its port search
  net::sock_id sk = net::kNone;
  net::sock_id accepted = net::kNone;
  union { net::connect_info ci; };     // has_connect
  union { net::bind_info bi; };        // has_bind
  union { net::udp_port_info ui; };    // has_udp
  Outcome() {}  // NOLINT: ci, bi, ui left unconstructed on purpose (see above)
};


// A map from sock ids to a uint32_t value (kNone: absent) kept as a vector indexed by the id:
// sock ids are dense (recycled by sock_alloc), so this costs 4 bytes per sock slot ever used
// and nothing per insertion — no hash-map node per generated connection.
class SockMap {
 public:
  uint32_t get(net::sock_id sk) const { return sk < v_.size() ? v_[sk] : net::kNone; }
  bool count(net::sock_id sk) const { return get(sk) != net::kNone; }
  void set(net::sock_id sk, uint32_t value) {
    if (sk >= v_.size()) v_.resize(std::max<size_t>(size_t(sk) + 1, v_.size() * 2), net::kNone);
    v_[sk] = value;
  }
  void erase(net::sock_id sk) {
    if (sk < v_.size()) v_[sk] = net::kNone;
  }

 private:
  std::vector<uint32_t> v_;
};

struct Pending {
  uint32_t call;
  uint64_t k;
  Nanos t_start;
};

struct Runner::Impl final : net::timer_sink, net::wire, net::app_events {
  Runner& r;
  Prefaulter socks_prefault;  // the planned socks' pages, mapped on another core ahead of use
  std::vector<net::segment> pkts;  // segments in flight (event payloads)
  std::vector<uint32_t> free_pkts;
  std::map<std::pair<int, int>, std::pair<PathSpec, Random>> links;  // (a <= b) → path
  std::vector<Random> ext_random;
  std::unordered_map<net::sock_id, Pending> pending;  // blocking connects awaiting the handshake
  std::unordered_map<net::sock_id, net::connect_info> pending_info;  // their autobind details
  // A blocking timeline connect (call ci, repetition k, begun at t_start) waits for its handshake:
  // its outcome is recorded when connect_done() reports it.
  void await_handshake(net::sock_id sk, uint32_t ci, uint64_t k, Nanos t_start, const net::connect_info& info) {
    pending[sk] = {ci, k, t_start};
    pending_info[sk] = info;
  }

  // Workload generators (WorkloadSpec): per workload its RNG and counters; per generated
  // connection a slot that its hold-then-close event names.
  struct WlState {
    Random rnd;
    uint64_t next_dest = 0;  // round-robin: the index of the next destination in `to`
    std::vector<net::sock_id> pool;
    uint64_t requests = 0, requests_failed = 0;
    int8_t external_only = -1;  // Runner::workload_external_only(), -1: not decided yet
    double mean_gap_ns = 0;     // 1e9 / rate (Runner::next_gap), 0: not computed yet
  };
  std::vector<WlState> wl;
  // A generated connection's hold-then-close event carries a = its sock, b = workload << 32 |
  // the sock's timer_gen (UDP; 0 for TCP).
  struct WlPending {
    uint32_t w;
    uint64_t k;              // the arrival (repetition) number
    net::connect_info info;  // its autobind, for the trace record at completion
    Nanos t_start;
  };
  std::unordered_map<net::sock_id, WlPending> wl_pending;  // generated connects awaiting the handshake
  SockMap wl_of_sock;                                      // generated sock -> workload
  std::unordered_set<net::sock_id> auto_children;         // server children the generator accepted
  // server children of generated connections still in SYN_RECV -> their client's endpoint
  std::unordered_map<net::sock_id, net::endpoint> accept_when_ready;
  net::sock_id in_connect = net::kNone;                    // the socket whose connect() is running

  net::connect_result connect(net::sock_id sk, const net::endpoint& to, bool nonblock = false) {
    net::connect_result r;
    r.err = connect(sk, to, nonblock, r.info);
    return r;
  }
  // The same, the search's details written to `info` (a timeline call's outcome).
  int connect(net::sock_id sk, const net::endpoint& to, bool nonblock, net::connect_info& info) {
    in_connect = sk;
    const int err = net::inet_stream_connect(r.w_, sk, to, nonblock, info);
    in_connect = net::kNone;
    return err;
  }
  net::world& r_world();

  void peer_closed(net::sock_id sk) override;
  void udp_ready(net::sock_id sk) override;
  void accept_ready(net::sock_id listener, net::sock_id child) override;

  // The name no longer refers to a socket (closed).
  void forget(const std::string& n, net::sock_id sk) {
    pending.erase(sk);
    pending_info.erase(sk);
    if (auto it = plain.find(n); it != plain.end() && it->second == sk) plain.erase(it);
    if (sk < name_of_sock.size()) {
      const NameRef& ref = name_of_sock[sk];
      if (ref.call != kNoCall && !ref.as && ref.k < inst[ref.call].size() && inst[ref.call][ref.k] == sk)
        inst[ref.call][ref.k] = net::kNone;
      if (ref.call != kNoCall && ref.as) {
        auto& v = inst[ref.call];
        if (ref.k < v.size() && v[ref.k] == sk) v[ref.k] = net::kNone;
      }
    }
  }
  std::unordered_map<std::string, net::sock_id> plain;       // single names
  std::vector<std::vector<net::sock_id>> inst;               // per call: sockets of "{i}" names
  std::vector<NameRef> name_of_sock;                         // by sock id
  // Per call: its sockets get no name index (a quiet run without observers, the call's names
  // unreferenced by any other call: unreferenced_fresh_calls). Nothing can ask for the name.
  std::vector<bool> unnamed;
  // Per call, what every repetition would otherwise recompute from the Call.
  struct CallPlan {
    bool creates = false;    // the op makes its socket when the name is unbound (socket, bind, connect, listen, send)
    bool fresh_rep = false;  // c.creates && c.count > 1: each repetition names a new socket
    // A repeated TCP connect() whose sockets nobody names (unnamed), without options: every
    // repetition is socket() + connect() on a fresh socket (Runner::run_fresh_connect).
    bool fresh_connect = false;
    // The Call's fields that run_call() and finish_call() read for every repetition, copied into
    // this one record: a Call spans several cache lines, and the repeated calls of a timeline
    // take turns (hold-1m's 1 000 calls, each repeated 1 000 times at t = 0, interleave).
    bool connect = false;         // c.op == Op::connect
    bool expect = false;          // c.expect
    bool distinct_ports = false;  // c.expect_total->distinct_ports
    bool nonblock = false;        // c.nonblock
    net::family family = net::family::inet;
    uint16_t netns = 0;           // c.netns (fresh_connect: >= 0)
    net::cred cred;
    uint64_t count = 1;
    Nanos t = 0, every = 0;
    net::endpoint addr;           // c.addr
    // fresh_connect: where the next repetition's connect will likely look (guessed after this
    // one's), for Runner::prefetch_calls_ahead().
    net::connect_guess guess;
  };
  std::vector<CallPlan> plans;
  // A trace (until a write error ends it) or --explain: names are formatted, calls recorded.
  bool verbose() const;
  std::vector<uint64_t> ok_count;                            // per call, for expect_total
  std::vector<std::map<int, uint64_t>> err_count;
  std::vector<std::vector<bool>> ports_seen;
  std::unique_ptr<trace::JsonlTrace> trace;
  std::unique_ptr<trace::PcapWriter> pcap;          // --pcap
  std::unique_ptr<trace::PerfettoWriter> perfetto;  // --perfetto
  net::observer_tee tee;                            // w.obs when more than one output listens
  // A call returned: the observers hear of it (Perfetto's instants, the heat map's clock).
  void call_event(Nanos t_start, uint16_t ns, std::string_view op, const std::string& sock, net::sock_id sk, int err,
                  std::string_view detail) {
    if (r_world().obs && r_world().obs->wants_calls()) r_world().obs->call(r_world(), {t_start, ns, op, sock, sk, err, detail});
  }
  std::unique_ptr<trace::Explainer> explainer;  // --explain (null: off)
  // The call whose --explain block is open (run_call began it, finish_call ends it).
  uint32_t explain_call = kNoCall;
  uint64_t explain_k = 0;
  void explain_begin(Nanos t, const std::string& header, const std::string& sock) {
    if (explainer) explainer->begin(t, header, sock);
  }
  void explain_end(Nanos t, const std::string& result = {}, std::optional<int> err = std::nullopt) {
    if (explainer) explainer->end(t, result, err);
  }

  explicit Impl(Runner& rr) : r(rr) {}

  void arm(Nanos when, net::timer_kind kind, net::sock_id sk, uint32_t gen) override {
    r.eng_.schedule({when, engine::Prio::Timer, kTimer, sk, (uint64_t(kind) << 32) | gen});
  }

  // The wire (wire.cc): links, loss, jitter, delivery.
  std::pair<const PathSpec*, Random*> path_of(const net::segment& seg, int to_ns, int ext);
  bool quiet_instant(int ext) const;
  void deliver(const net::segment& seg);
  void xmit(const net::segment& in) override;

  void connect_done(net::sock_id sk, int err) override;

  std::string name(net::sock_id id) const {
    if (id >= name_of_sock.size() || name_of_sock[id].call == kNoCall) {
      auto it = generated_names.find(id);
      return it == generated_names.end() ? "" : it->second;
    }
    const NameRef& n = name_of_sock[id];
    const Call& c = r.sc_.timeline[n.call];
    return sock_name(n.as ? c.as : c.sock, n.k);
  }

  void set_name(net::sock_id id, uint32_t call, uint32_t k, bool as) {
    generated_names.erase(id);
    if (name_of_sock.size() <= id) name_of_sock.resize(id + 1);
    name_of_sock[id] = {call, k, as};
    const Call& c = r.sc_.timeline[call];
    const std::string& pat = as ? c.as : c.sock;
    if (pat.find("{i}") == std::string::npos) {
      plain[pat] = id;
    } else {
      auto& v = inst[call];
      if (v.size() <= k) v.resize(k + 1, net::kNone);
      v[k] = id;
    }
  }

  std::unordered_map<net::sock_id, std::string> generated_names;  // only when tracing
  void set_generated_name(net::sock_id id, const std::string& wname, uint64_t k) {
    if (name_of_sock.size() > id) name_of_sock[id] = {};
    generated_names[id] = fmt::format("{}#{}", wname, k);
  }

  // The sock a name refers to now; kNone if never created (or closed). A "{i}" name is looked
  // up through the patterns of the calls that give names (PatternIndex): the earliest such call
  // whose repetition k is alive, as if the timeline were scanned in order, in time independent
  // of the timeline's length.
  PatternIndex<uint32_t> patterns;  // "{i}" patterns of naming calls (creating, accept's "as") → call
  net::sock_id lookup(const std::string& n) const {
    if (auto it = plain.find(n); it != plain.end()) return it->second;
    uint32_t best = kNoCall;
    net::sock_id found = net::kNone;
    patterns.for_each_match(n, [&](uint64_t k, uint32_t ci) {
      if (ci < best && k < inst[ci].size() && inst[ci][k] != net::kNone) {
        best = ci;
        found = inst[ci][k];
      }
    });
    return found;
  }
};

inline bool Runner::Impl::verbose() const { return trace->enabled() || r.opt_.explain; }

// --explain: "connect NAME = 0 (local port P)" or "connect NAME = -1 ERRNO".
inline std::string connect_result_line(const net::world& w, net::sock_id sk, int err, const std::string& name) {
  if (err) return fmt::format("connect {} = -1 {}", name, errno_name(err));
  return fmt::format("connect {} = 0 (local port {})", name, w.sk(sk).alive ? w.sk(sk).num : 0);
}

// setsockopt(): the options portsim models, with the kernel's own refusals (runner.cc).
int apply_opt(const net::kernel_profile& k, net::world& w, net::sock_id id, const OptSetting& o);
// A sysctl write under the netns' machine's kernel (global sysctls reach every netns).
std::string sysctl_set(net::world& w, uint16_t ns, const std::string& name, const std::string& value);
// getsockname(): inet_rcv_saddr and inet_sport (which keeps the port after inet_put_port); an
// AF_INET6 socket shows an IPv4 address in its v4-mapped form.
inline std::string endpoint_str(const net::sock& s) { return net::to_string(net::endpoint{s.rcv_saddr, s.sport}, s.v6); }

}  // namespace portsim::scenario
