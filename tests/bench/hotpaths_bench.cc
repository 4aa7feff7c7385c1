// Hot paths: the connect() scan, the ehash lookup, the word scan of a parity class, the event
// queue, SipHash; and the machine's own latency for a random access into a table of a given
// size (what the big runs pay per ehash slot or sock touched). Whole-run figures (events/s, peak RSS) come from `portsim run` on the
// scenarios in this folder; see README "Performance".
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cerrno>
#include <numeric>
#include <random>
#include <vector>

#include "portsim/base/siphash.h"
#include "portsim/engine/engine.h"
#include "portsim/net/af_inet.h"
#include "portsim/net/port_bitmap.h"
#include "portsim/net/secure_seq.h"
#include "portsim/net/tcp.h"
#include "portsim/scenario/load.h"
#include "portsim/scenario/runner.h"

using namespace portsim;

namespace {

struct Bench {
  scenario::Scenario sc;
  net::world w;
  explicit Bench(const char* range) {
    auto lr = scenario::load_scenario_text(
        std::string(R"({"machines":[{"name":"h","addresses":["10.0.0.1/16"],"sysctls":{"net.ipv4.ip_local_port_range":")") +
            range + R"("}}],"external":["10.0.1.1:*"],"timeline":[]})",
        "bench");
    sc = *lr.scenario;
    scenario::build_world(sc, 1, w);
    for (const auto& x : sc.externals) w.add_external(x.ep);
  }
  // The bench world has no wire (no engine runs), so a connect that got its port stays SYN_SENT
  // with EINPROGRESS: hashed in ehash and holding its port, which is what the fill needs. Only a
  // failed connect (EADDRNOTAVAIL …) is closed, through tcp_close() as an application would;
  // world::sock_free() on a hashed/bound sock is refused by the model.
  int connect(uint16_t dport) {
    const net::sock_id s = net::sys_socket(w, 0, {});
    int err = net::inet_stream_connect(w, s, {net::inet_addr::v4(0x0a000101), dport}).err;
    if (err == EINPROGRESS) err = 0;
    if (err) close(s);
    return err;
  }
  // close(2) on the fd: tcp_close() (SYN_SENT / CLOSE → tcp_done + destroy); a sock left in
  // TIME_WAIT is killed so its port is free again at once (keeps the fill level steady).
  void close(net::sock_id s) {
    net::tcp_close(w, s);
    if (w.sk(s).alive && w.sk(s).state == net::tcp_state::TIME_WAIT) net::inet_twsk_kill(w, s);
  }
};

// connect() toward a destination whose range is `fill` percent used (default range).
void BM_connect_scan(benchmark::State& st) {
  Bench b("32768 60999");
  const int used = int(28232 * st.range(0) / 100);
  for (int i = 0; i < used; ++i) b.connect(80);
  uint64_t cand = 0, n = 0;
  for (auto _ : st) {
    const net::sock_id s = net::sys_socket(b.w, 0, {});
    auto r = net::inet_stream_connect(b.w, s, {net::inet_addr::v4(0x0a000101), 80});
    cand += r.info.examined;
    ++n;
    st.PauseTiming();
    b.close(s);  // SYN_SENT (EINPROGRESS) or failed: tcp_close() releases sock and port
    st.ResumeTiming();
  }
  st.counters["candidates/connect"] = double(cand) / double(n ? n : 1);
}
BENCHMARK(BM_connect_scan)->Arg(0)->Arg(50)->Arg(90)->Arg(99);

void BM_ehash_lookup(benchmark::State& st) {
  Bench b("32768 60999");
  for (int d = 0; d < 20; ++d)
    for (int i = 0; i < 10000; ++i) b.connect(uint16_t(1000 + d));
  uint32_t k = 0;
  for (auto _ : st) {
    benchmark::DoNotOptimize(net::inet_ehash_lookup(b.w, 0, net::inet_addr::v4(0x0a000001), uint16_t(32768 + (k * 7919) % 28232),
                                                    net::inet_addr::v4(0x0a000101), uint16_t(1000 + k % 20)));
    ++k;
  }
}
BENCHMARK(BM_ehash_lookup);

void BM_find_free_step2_full_class(benchmark::State& st) {
  net::PortBitmap used;
  for (uint32_t p = 32768; p < 61000; p += 2) used.set(p);
  for (auto _ : st) benchmark::DoNotOptimize(net::find_free_step2(used, nullptr, nullptr, 32768, 14116));
  st.counters["candidates/s"] = benchmark::Counter(14116.0 * double(st.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_find_free_step2_full_class);

void BM_siphash_port_offset(benchmark::State& st) {
  const siphash_key key{1, 2};
  uint32_t ts = 0;
  for (auto _ : st) benchmark::DoNotOptimize(net::secure_ipv4_port_ephemeral(0x0a000001, 0x0a000002, 80, ts++, key));
}
BENCHMARK(BM_siphash_port_offset);

// Dependent random loads over a table of range(0) KiB: one 64-byte line per node, visited in a
// seeded random cycle, so each load waits for the one before (no overlap, no prefetch).
void BM_memory_latency(benchmark::State& st) {
  const size_t lines = size_t(st.range(0)) * 1024 / 64;
  std::vector<size_t> order(lines);
  std::iota(order.begin(), order.end(), size_t(0));
  std::shuffle(order.begin(), order.end(), std::mt19937_64(1));
  std::vector<size_t> next(lines * 8);
  for (size_t i = 0; i < lines; ++i) next[order[i] * 8] = order[(i + 1) % lines] * 8;
  size_t p = 0;
  for (auto _ : st) {
    p = next[p];
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_memory_latency)->Arg(32)->Arg(1024)->Arg(4096)->Arg(16384)->Arg(65536)->Arg(262144);

struct Nop : engine::EventHandler {
  void handle(const engine::Event&) override {}
};

void BM_event_queue(benchmark::State& st) {
  engine::Engine e;
  Nop h;
  Nanos t = 0;
  for (int i = 0; i < st.range(0); ++i) e.schedule({t + uint64_t(i) * 7, engine::Prio::Call, 0, 0, 0});
  for (auto _ : st) {  // one push + one pop at a steady queue size (the pop: the earliest event)
    e.schedule({e.now() + 1000, engine::Prio::Call, 0, 0, 0});
    e.run(h, UINT64_MAX, 1);
    t = e.now();
  }
}
BENCHMARK(BM_event_queue)->Arg(1000)->Arg(100000);

// churn-random's pattern: range(0) events pending, each event replaced by one at now + an
// exponential delay whose mean keeps that many pending at 10 000 events/s (mean 100 µs × n), so
// events land across several digits of the radix heap. One iteration = one event run (its
// handler schedules the next). Delays come from a precomputed table (no RNG in the loop).
void BM_event_queue_churn(benchmark::State& st) {
  const auto n = size_t(st.range(0));
  std::mt19937_64 rng(1);
  std::exponential_distribution<double> exp_delay(1.0 / (100e3 * double(n)));
  std::vector<Nanos> delays(4096);
  for (Nanos& d : delays) d = 1 + Nanos(exp_delay(rng));
  struct Churn : engine::EventHandler {
    engine::Engine& e;
    const std::vector<Nanos>& delays;
    size_t next = 0;
    Churn(engine::Engine& en, const std::vector<Nanos>& d) : e(en), delays(d) {}
    void handle(const engine::Event& ev) override {
      e.schedule({ev.t + delays[next++ & 4095], engine::Prio::Call, 0, ev.a, 0});
    }
  };
  engine::Engine e;
  Churn h(e, delays);
  for (size_t i = 0; i < n; ++i) e.schedule({delays[(i * 7) & 4095], engine::Prio::Call, 0, uint32_t(i), 0});
  for (auto _ : st) e.run(h, UINT64_MAX, 1);
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_event_queue_churn)->Arg(1000)->Arg(10000)->Arg(100000);

}  // namespace

BENCHMARK_MAIN();
