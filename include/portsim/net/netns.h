// Machines, network namespaces and the world that owns every table. A machine is one kernel:
// net_secret and table_perturb are kernel-global (KERNEL-MAP §1.1–1.2), shared by its netns.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "portsim/base/random.h"
#include "portsim/base/siphash.h"
#include "portsim/base/time.h"
#include "portsim/net/id_table.h"
#include "portsim/net/inet_hashtables.h"
#include "portsim/net/kernel_profile.h"
#include "portsim/net/secure_seq.h"
#include "portsim/net/sysctl.h"
#include "portsim/net/udp.h"

namespace portsim::net {

class observer;
class timer_sink;
class wire;
class app_events;

// Who answers a SYN that leaves the model: a declared external endpoint (port 0 = any port).
enum class external_answer : uint8_t { accept, refuse, silent };
struct external_endpoint {
  inet_addr addr;
  uint16_t port = 0;
  external_answer answer = external_answer::accept;
  // portsim's, set by the runner: reached at once and for sure, and nothing watches the wire
  // (no trace, pcap or --explain). A connect to it leaves its ISNs lazy (sock::snd_lazy).
  bool unwatched = false;
};

// CONFIG_INET_TABLE_PERTURB_ORDER default 16 (net/ipv4/Kconfig).
inline constexpr uint32_t INET_TABLE_PERTURB_SIZE = 1u << 16;

struct machine {
  std::string name;
  uint32_t hz = 250;
  uint64_t jiffies0 = 0;  // jiffies at virtual t=0: INITIAL_JIFFIES + uptime
  uint64_t realtime0 = 0;  // CLOCK_REALTIME (ns since the epoch) at virtual t=0, seeded
  siphash_key net_secret;
  std::vector<uint32_t> table_perturb;  // INET_TABLE_PERTURB_SIZE cells
  Random random;  // get_random_u32_below() draws of this kernel
  kernel_profile kp = default_kernel_profile();  // which kernel this machine runs
  std::array<uint32_t, 16> md5_secret{};  // ≤ 4.10: net_secret[MD5_MESSAGE_BYTES / 4]
  uint32_t hint = 0;  // ≤ 5.11: __inet_hash_connect's `static u32 hint` (kernel-global)
  // Exact replay (scenario "perturb_draws", "connect_jiffies"; the kernel's values read from a
  // live guest): consumed in order, one per use; afterwards the seeded stream / virtual clock.
  std::vector<uint32_t> perturb_draws;   // __inet_hash_connect's random increment draws
  size_t perturb_draws_used = 0;
  std::vector<uint64_t> connect_jiffies; // jiffies at each timeline connect() call
  size_t connect_jiffies_used = 0;
  std::optional<uint64_t> call_jiffies;  // the current connect() call's value, while it runs
  // "call_monotonic_ns": the guest's CLOCK_MONOTONIC when each timeline call of this machine
  // began. The latest one taken anchors the machine's monotonic clock: at virtual time `now`
  // it reads anchor + (now - the call's virtual time), so what a call does (a FIN delivered on
  // loopback within close(), the connect() itself) sees the guest's instant of that call.
  std::vector<uint64_t> call_monotonic;
  size_t call_monotonic_used = 0;
  std::optional<std::pair<Nanos, uint64_t>> mono_anchor;  // (virtual time, CLOCK_MONOTONIC ns)
  // tw_ts_recent_stamp as ktime_get_seconds() gave it on that clock, per TIME_WAIT sock (only
  // with "call_monotonic_ns"; written at every stamp, so a reused sock id is overwritten).
  std::unordered_map<uint32_t, uint64_t> tw_stamp_mono_s;

  // The window port_offset_timeseed() last computed.
  struct seed_window {
    Nanos from = 1, until = 0;  // empty
    uint64_t jiffies0 = 0;
    uint32_t hz = 0;
    uint32_t value = 0;
  };
  mutable seed_window seed_;
  // The first virtual time at which jiffies(t) >= j (jiffies(t) = jiffies0 + floor(t * hz / 1e9)).
  Nanos first_at(uint64_t j) const {
    if (j <= jiffies0) return 0;
    const unsigned __int128 t = ((unsigned __int128)(j - jiffies0) * kNsPerSec + hz - 1) / hz;
    return t > ~Nanos(0) ? ~Nanos(0) : Nanos(t);
  }

  machine(std::string n, uint32_t hz_, uint64_t seed)
      : name(std::move(n)), hz(hz_), random(seed, "get_random_u32:" + name) {}
  uint64_t jiffies(Nanos now) const { return jiffies0 + nanos_to_jiffies(now, hz); }
  uint64_t realtime_ns(Nanos now) const { return realtime0 + uint64_t(now); }  // ktime_get_real_ns()
  // get_random_u32_below(ceil) of __inet_hash_connect's increment (prandom_u32() % 16 in 5.12):
  // the next given draw, else the seeded stream.
  uint32_t perturb_draw(uint32_t ceil) {
    return perturb_draws_used < perturb_draws.size() ? perturb_draws[perturb_draws_used++] : random.u32_below(ceil);
  }
  // A timeline connect() call begins / ends: it takes the next "connect_jiffies" value, if any.
  void connect_call_begin() {
    call_jiffies.reset();
    if (connect_jiffies_used < connect_jiffies.size()) call_jiffies = connect_jiffies[connect_jiffies_used++];
  }
  void connect_call_end() { call_jiffies.reset(); }
  // A timeline call of this machine begins: it takes the next "call_monotonic_ns" value, if any.
  void timeline_call_begin(Nanos now) {
    if (call_monotonic_used < call_monotonic.size()) mono_anchor = {now, call_monotonic[call_monotonic_used++]};
  }
  // ktime_get_seconds() (CLOCK_MONOTONIC seconds) from the guest's clock, or nothing without
  // "call_monotonic_ns" (or before its first call): then the virtual clock's uptime decides.
  std::optional<uint64_t> guest_seconds(Nanos now) const {
    if (!mono_anchor) return std::nullopt;
    return (mono_anchor->second + uint64_t(now - mono_anchor->first)) / uint64_t(kNsPerSec);
  }
  // jiffies as secure_ipv4/6_port_ephemeral() reads it for the time seed.
  uint64_t port_offset_jiffies(Nanos now) const { return call_jiffies ? *call_jiffies : jiffies(now); }
  // ephemeral_timeseed(port_offset_jiffies(now), hz): jiffies / (10 * HZ). Without an exact-replay
  // value the seed is the same over one 10-s window of virtual time, remembered as
  // [seed_from, seed_until) (two divisions per connect become two compares; the value is the
  // same, checked against the direct formula by the [timeseed] unit test).
  uint32_t port_offset_timeseed(Nanos now) const {
    if (call_jiffies) return ephemeral_timeseed(*call_jiffies, hz);
    if (now >= seed_.from && now < seed_.until && seed_.jiffies0 == jiffies0 && seed_.hz == hz) return seed_.value;
    const uint64_t period = 10ull * hz;  // EPHEMERAL_PORT_SHUFFLE_PERIOD
    const uint64_t j = jiffies(now);
    seed_ = {first_at(j / period * period), first_at(j / period * period + period), jiffies0, hz,
             ephemeral_timeseed(j, hz)};
    return seed_.value;
  }
};

struct netns {
  std::string name;
  uint16_t id = 0;
  uint32_t machine = 0;
  sysctls sys;
  std::vector<ifaddr> addrs;       // loopback 127.0.0.1/8 and ::1 are implicit
  std::vector<uint32_t> bhash;     // port -> inet_bind_bucket (kNone: none)
  PortBitmap connect_skip;         // reserved, or a bucket made by bind(): connect() skips
  std::unordered_map<uint16_t, std::vector<sock_id>> listeners;  // by port (lhash2's role)
  uint32_t tw_count = 0;           // tcp_death_row.tw_refcount - 1

  bool owns(const inet_addr& a) const;  // a local address of this namespace?
};

// Counters that the summary and the sweeps report.
struct stats {
  uint64_t candidates = 0;  // connect() candidates examined, over all calls
  uint64_t tw_recycled = 0;       // TcpExtTWRecycled
  uint64_t tw_overflow = 0;       // TcpExtTCPTimeWaitOverflow
  uint64_t time_wait = 0, time_wait_peak = 0;
  uint64_t established = 0, established_peak = 0;
};

struct world {
  std::vector<machine> machines;
  std::vector<netns> nets;
  std::vector<sock> socks;
  std::vector<sock_id> free_socks;
  std::vector<inet_bind_bucket> tbs;
  std::vector<uint32_t> free_tbs;
  std::vector<inet_bind2_bucket> tb2s;
  std::vector<uint32_t> free_tb2s;
  IdTable ehash;                    // established + TIME_WAIT, keyed by (netns, 4-tuple)
  IdTable dest_table;               // connect_dest index, keyed by (netns, saddr, daddr, dport)
  std::vector<connect_dest> dests;
  std::vector<uint32_t> free_dests;
  uint32_t last_dest = kNone;       // the connect_dest dest_find() found last (a connect asks 2-3 times)
  sock_id syn_sender = kNone;       // tcp_connect(): the sock whose SYN is being sent (tcp_v4_rcv's hint)
  observer* obs = nullptr;          // trace / explain hooks; null = off
  timer_sink* timers = nullptr;     // where TIME_WAIT and other timers are armed
  wire* net_wire = nullptr;         // where segments go (null: nowhere)
  app_events* app = nullptr;        // connect() completions
  std::vector<external_endpoint> externals;  // hosts outside the model that answer
  // The kernel the external hosts run (one for all): its net_secret and CLOCK_REALTIME at t=0,
  // for the ISNs of their SYN-ACKs (secure_tcp_seq).
  siphash_key external_secret;
  uint64_t external_realtime0 = 0;
  std::unordered_map<uint64_t, std::vector<uint32_t>> external_index;  // address hash -> indexes
  void add_external(const external_endpoint& e);
  // The external endpoint answering addr:port (an exact port beats "any port"), or -1.
  int find_external(const inet_addr& addr, uint16_t port) const {
    if (ext_memo.answers(addr, port, externals.size())) return ext_memo.index;
    return find_external_slow(addr, port);
  }
  int find_external_slow(const inet_addr& addr, uint16_t port) const;  // and remembers the answer
  // The last answer of find_external() (a handshake asks for the same endpoint 3-5 times in a
  // row: SYN out, the external's SYN-ACK, the ACK). An answer holds while `externals` keeps the
  // size it had (add_external() only appends).
  struct external_memo {
    inet_addr addr;
    uint16_t port = 0;
    int index = -1;
    uint32_t n = UINT32_MAX;  // externals.size() when remembered (never: no size matches)
    bool answers(const inet_addr& a, uint16_t p, size_t ext_n) const { return n == ext_n && port == p && addr == a; }
  };
  mutable external_memo ext_memo;
  // The last answer of route_to() (af_inet.h): a handshake's SYN and ACK ask the same question.
  // Addresses and namespaces do not change once the world is built; `nets` is checked anyway.
  struct route_memo {
    inet_addr daddr;
    uint16_t from = 0;
    bool valid = false;
    uint32_t to = kNone;   // index in nets, kNone: no namespace owns daddr
    size_t nets = 0;
    bool answers(const inet_addr& d, uint16_t from_ns, size_t n) const {
      return valid && daddr == d && from == from_ns && nets == n;
    }
  };
  mutable route_memo route_last;
  // Behind those two, direct-mapped tables of recent answers by address (and port, or source
  // namespace), for runs where many destinations take turns (exhaust-100: 100 ports of one
  // address; hold-1m: 1 000 addresses). Same validity rules as the memos above.
  static constexpr size_t kRecentSlots = 4096;
  static size_t recent_slot(const inet_addr& a, uint16_t port_or_ns) {
    // Fibonacci hashing: neighbouring addresses or ports (10.1.0.1, 10.1.0.2, ...) spread
    // evenly (hold-1m's 1 000 addresses take 1 000 of the 4 096 slots; with 1 024 slots, 883).
    return size_t(((a.lo ^ (a.hi * 0xff51afd7ed558ccdULL) ^ port_or_ns) * 0x9e3779b97f4a7c15ULL) >> 52);
  }
  mutable std::array<external_memo, kRecentSlots> ext_recent{};
  mutable std::array<route_memo, kRecentSlots> route_recent{};
  struct listener_info {
    int backlog = 128;
    std::vector<sock_id> accept_queue;  // established children not yet accepted
  };
  std::unordered_map<sock_id, listener_info> listening;
  Nanos now = 0;
  stats st;
  udp_world udp;                    // UDP tables (udp.h)

  sock& sk(sock_id id) { return socks[id]; }
  const sock& sk(sock_id id) const { return socks[id]; }
  // Hints to the CPU, nothing changes (portsim's; a close comes to a sock and buckets not used
  // for a while, a connect to buckets of another destination's port): start loading sock id's
  // record (both of its cache lines), bind2 bucket t2 (any value: nothing when no bucket), bind
  // bucket tb; the first bind2 bucket of tb (both lines; tb's read), the sock heading its owners
  // (tb and that bucket read), the bind bucket of sock id (its tb2 read). always_inline: out of
  // line, GCC's link-time optimizer drops calls to a function that only prefetches (IdTable).
  [[gnu::always_inline]] void prefetch_sk(sock_id id) const {
    const char* p = reinterpret_cast<const char*>(&socks[id]);
    __builtin_prefetch(p);
    __builtin_prefetch(p + sizeof(sock) - 1);
  }
  [[gnu::always_inline]] void prefetch_tb2(uint32_t t2) const {
    if (t2 < tb2s.size()) __builtin_prefetch(&tb2s[t2]);
  }
  [[gnu::always_inline]] void prefetch_tb(uint32_t tb) const {
    if (tb < tbs.size()) __builtin_prefetch(&tbs[tb]);
  }
  uint32_t first_tb2_of(uint32_t tb) const {  // kNone when tb is not a bucket or has no tb2
    const uint32_t t2 = tb < tbs.size() ? tbs[tb].bhash2 : kNone;
    return t2 < tb2s.size() ? t2 : kNone;
  }
  [[gnu::always_inline]] void prefetch_tb2_of_tb(uint32_t tb) const {
    if (const uint32_t t2 = first_tb2_of(tb); t2 != kNone) {
      const char* p = reinterpret_cast<const char*>(&tb2s[t2]);
      __builtin_prefetch(p);
      __builtin_prefetch(p + sizeof(inet_bind2_bucket) - 1);
    }
  }
  [[gnu::always_inline]] void prefetch_owner_of_tb(uint32_t tb) const {
    const uint32_t t2 = first_tb2_of(tb);
    if (t2 == kNone) return;
    if (const sock_id o = tb2s[t2].owners; o < socks.size()) __builtin_prefetch(&socks[o], 1);
  }
  // For a connect expected to find `g` (inet_hash_connect_guess), in three stages a few calls
  // apart, each reading what the one before brought in: (1) the bind bucket, the ehash slot, the
  // perturb cell, the bitmap word, the destination's lines; (2) the port's bind2 bucket; (3) the
  // sock heading that bucket's owners, which inet_bind_hash() links the new sock before.
  [[gnu::always_inline]] void prefetch_connect_guess(const connect_guess& g, int stage) const {
    if (!g.port) return;
    switch (stage) {
      case 1:
        prefetch_tb(g.tb);
        ehash.prefetch(g.ehash_key);
        __builtin_prefetch(g.perturb);
        if (g.dest_word) __builtin_prefetch(g.dest_word);
        for (const void* p : g.dest_lines) __builtin_prefetch(p);
        return;
      case 2: prefetch_tb2_of_tb(g.tb); return;
      default: prefetch_owner_of_tb(g.tb); return;
    }
  }
  [[gnu::always_inline]] void prefetch_tb_of(sock_id id) const {
    const uint32_t t2 = socks[id].tb2;
    if (t2 >= tb2s.size()) return;
    if (const uint32_t tb = tb2s[t2].tb; tb < tbs.size()) __builtin_prefetch(&tbs[tb]);
  }
  netns& ns_of(sock_id id) { return nets[socks[id].netns]; }
  machine& machine_of(const netns& ns) { return machines[ns.machine]; }

  // IP_LOCAL_PORT_RANGE (packed lo | hi << 16, 0 = unset) lives beside struct sock, by sock
  // id, allocated only once a socket sets it: few sockets do, every held connection would pay.
  std::vector<uint32_t> local_port_ranges;
  uint32_t local_port_range(const sock& s) const {
    return s.has_local_port_range ? local_port_ranges[size_t(&s - socks.data())] : 0;
  }
  void set_local_port_range(sock_id id, uint32_t range);

  // A new sock in `netns`: a slot holding sock{} (a freed slot keeps its timer_gen: stale
  // timers stay stale), alive, then `init` sets the caller's fields in place — not built on
  // the stack and copied, whose narrow stores the copy's wide loads would wait for — and then
  // observers hear of it.
  template <typename Init>
  sock_id sock_alloc_with(uint16_t netns, Init&& init) {
    const sock_id id = sock_slot(netns);
    init(socks[id]);
    sock_allocated(id);
    return id;
  }
  sock_id sock_alloc(uint16_t netns) {
    return sock_alloc_with(netns, [](sock&) {});
  }
  void sock_free(sock_id id);
  sock_id sock_slot(uint16_t netns);  // sock_alloc_with()'s two halves
  void sock_allocated(sock_id id);
  // net/ipv4/tcp.c: tcp_set_state() — records the change (trace) and keeps indexes in step.
  void set_state(sock_id id, tcp_state to);
};

// Keeps the connect destination index in step with a hashed sock's state (inet_hashtables.cc);
// most calls (a state change within one set) change nothing and stop here.
inline void connect_dest_refresh(world& w, sock_id id) {
  const sock& s = w.socks[id];
  if (connect_dest_set_of(s) != s.in_dest) connect_dest_update(w, id);
}

}  // namespace portsim::net
