// Sharded sweeps and merge (issue 15). The run numbering and the merge rules are portsim's own
// definitions (README "Sweeps on a cluster"); the kernel numbers in the expected values are
// derived in each test: a client-closed connection keeps its port in TIME_WAIT for
// TCP_TIMEWAIT_LEN = 60 s (include/net/tcp.h, tcp_time_wait), so a 1 000-port range
// (IP_LOCAL_PORT_RANGE 40000-40999) runs out after 1 000 connects when they come faster than
// 1 000 / 60 s ≈ 16.7 per second, and tcp_tw_reuse = 1 recycles TIME_WAIT sockets
// (tcp_twsk_unique, net/ipv4/tcp_ipv4.c) instead.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "portsim/scenario/load.h"
#include "portsim/scenario/shard.h"
#include "portsim/scenario/sweep.h"

using namespace portsim;
using namespace portsim::scenario;

namespace {

// 30 s of client-closed connections to one external backend from 1 000 ports; no "sysctls"
// and no "timeline" (workloads only). A connect at 29 s expects success: it fails once the
// range is exhausted (rate above 1000/60 s without tcp_tw_reuse).
const char* kSmall = R"({"name": "small", "seed": 7,
  "machines": [{"name": "c", "addresses": ["10.0.0.1/24"]}],
  "external": ["10.0.0.2:80"],
  "workloads": [{"name": "req", "host": "c", "stop": "30s", "rate": 20, "to": ["10.0.0.2:80"],
                 "hold": {"exp": "50ms"}, "opts": {"IP_LOCAL_PORT_RANGE": "40000-40999"}}]})";

const char* kWithCheck = R"({"name": "small", "seed": 7,
  "machines": [{"name": "c", "addresses": ["10.0.0.1/24"]}],
  "external": ["10.0.0.2:80"],
  "workloads": [{"name": "req", "host": "c", "stop": "30s", "rate": 20, "to": ["10.0.0.2:80"],
                 "hold": {"exp": "50ms"}, "opts": {"IP_LOCAL_PORT_RANGE": "40000-40999"}}],
  "timeline": [{"t": "29s", "host": "c", "op": "connect", "sock": "probe", "to": "10.0.0.2:80",
                "opts": {"IP_LOCAL_PORT_RANGE": "40000-40999"}, "expect": {"ret": 0}}]})";

struct TempFile {
  std::string path;
  TempFile(std::string p, const std::string& text) : path(std::move(p)) { std::ofstream(path) << text; }
  ~TempFile() { std::remove(path.c_str()); }
};

// The value of column `name` in a CSV row, by the header.
std::string field(const std::string& header, const std::string& row, const std::string& name) {
  auto split = [](const std::string& s) {
    std::vector<std::string> f;
    std::stringstream ss(s);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    if (!s.empty() && s.back() == ',') f.push_back("");
    return f;
  };
  const auto h = split(header), r = split(row);
  for (size_t i = 0; i < h.size() && i < r.size(); ++i)
    if (h[i] == name) return r[i];
  return "(no column " + name + ")";
}

template <class F>
std::string captured(F&& write) {
  std::FILE* f = std::tmpfile();
  write(f);
  std::rewind(f);
  std::string s;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
  std::fclose(f);
  return s;
}

// Drops the wall_s column (the CSV's last) and the JSON's "wall_s" lines.
std::string without_wall(const std::string& text) {
  std::istringstream in(text);
  std::string out, line;
  while (std::getline(in, line)) {
    if (line.find("\"wall_s\":") != std::string::npos) continue;
    if (line.find(',') != std::string::npos && line.find('"') == std::string::npos) line = line.substr(0, line.rfind(','));
    out += line + "\n";
  }
  return out;
}

SweepSpec small_spec(const std::string& file) {
  std::string err;
  SweepSpec spec;
  spec.file = file;
  spec.vary.push_back(*parse_vary("/workloads/0/rate=20,40,80", err));
  spec.vary.push_back(*parse_vary("/machines/0/sysctls/net.ipv4.tcp_tw_reuse=0,1", err));
  spec.seeds = 2;
  spec.jobs = 2;
  spec.sample_every = 5'000'000'000;
  return spec;
}

// Runs shard i/n of the spec and writes it to `path`.
void write_shard_file(SweepSpec spec, uint64_t i, uint64_t n, const std::string& path) {
  spec.shard_index = i;
  spec.shard_count = n;
  std::string err;
  auto plan = plan_sweep(spec, err);
  REQUIRE(plan);
  auto rows = run_sweep(spec, *plan, err);
  REQUIRE(rows);
  std::ofstream(path) << captured([&](std::FILE* f) { write_shard(f, spec, *plan, *rows); });
}

}  // namespace

TEST_CASE("sweep: --runs and --shard syntax", "[sweep][shard]") {
  std::string err;
  auto r = parse_runs("3,7,10-20", err);
  REQUIRE(r);
  CHECK(r->size() == 13);
  CHECK(r->front() == 3);
  CHECK(r->back() == 20);
  CHECK(parse_runs("5,3,5", err) == std::vector<uint64_t>{3, 5});  // sorted, each once
  CHECK_FALSE(parse_runs("4-2", err));
  CHECK(err == "--runs '4-2': expected run indices and ranges such as 3,7,10-20, got '4-2'");
  CHECK_FALSE(parse_runs("1,,2", err));
  CHECK_FALSE(parse_runs("x", err));
  CHECK(parse_shard("3/4", err) == std::pair<uint64_t, uint64_t>{3, 4});
  CHECK_FALSE(parse_shard("4/4", err));
  CHECK(err == "--shard '4/4': expected I/N with 0 <= I < N, e.g. 0/4");
  CHECK_FALSE(parse_shard("1/0", err));
  CHECK_FALSE(parse_shard("2", err));
}

TEST_CASE("sweep: runs are numbered first --vary slowest, seeds fastest; run r has seed base + r mod seeds",
          "[sweep][shard]") {
  TempFile sc("shard_test_small_runs.json", kSmall);
  SweepSpec spec = small_spec(sc.path);
  std::string err;
  auto plan = plan_sweep(spec, err);
  REQUIRE(plan);
  REQUIRE(plan->all.size() == 12);  // 3 rates × 2 tw_reuse × 2 seeds
  CHECK(plan->all[5].values == std::vector<std::string>{"40", "0"});
  CHECK(plan->all[5].seed == 8);  // scenario seed 7 + 5 mod 2
  CHECK(plan->all[11].values == std::vector<std::string>{"80", "1"});
  // Shard 1/5 of the listed runs 0-9: those r with r mod 5 = 1.
  spec.runs = *parse_runs("0-9", err);
  spec.shard_index = 1;
  spec.shard_count = 5;
  plan = plan_sweep(spec, err);
  REQUIRE(plan);
  CHECK(plan->selected == std::vector<uint64_t>{1, 6});
  spec.runs = {12};
  CHECK_FALSE(plan_sweep(spec, err));
  CHECK(err == "--runs: run 12 does not exist (the sweep has 12 runs: 0-11)");
}

TEST_CASE("merge: three shards give the bytes of the unsharded sweep (wall_s aside)", "[sweep][shard]") {
  TempFile sc("shard_test_small.json", kSmall);
  const SweepSpec spec = small_spec(sc.path);
  std::string err;
  auto all = run_sweep(spec, err);
  REQUIRE(all);
  // At 80/s without tcp_tw_reuse the 1 000 ports run out at 1000 / 80 = 12.5 s, and none leaves
  // TIME_WAIT within the 30 s: 2 400 connects, 1 000 succeed.
  CHECK((*all)[8].values == std::vector<std::string>{"80", "0"});
  CHECK((*all)[8].rep.connects == 2400);
  CHECK((*all)[8].rep.connects_ok == 1000);
  CHECK((*all)[10].rep.connects_ok == 2400);  // tcp_tw_reuse=1: none fails
  const std::vector<std::string> shards{"shard_test_0.shard", "shard_test_1.shard", "shard_test_2.shard"};
  for (uint64_t i = 0; i < 3; ++i) write_shard_file(spec, i, 3, shards[i]);
  auto m = merge_shards({shards[2], shards[0], shards[1]}, err);  // any order
  for (const auto& s : shards) std::remove(s.c_str());
  REQUIRE(m);
  REQUIRE(m->runs.size() == 12);
  const std::string csv = captured([&](std::FILE* f) { write_sweep_csv(f, spec, *all); });
  const std::string mcsv = captured([&](std::FILE* f) { write_merged_csv(f, *m); });
  CHECK(without_wall(mcsv) == without_wall(csv));
  CHECK(mcsv.size() > 1000);
  const std::string js = captured([&](std::FILE* f) { write_sweep_json(f, spec, *all); });
  const std::string mjs = captured([&](std::FILE* f) { write_merged_json(f, *m); });
  CHECK(without_wall(mjs) == without_wall(js));
  // The time series has no wall clock at all: equal byte for byte.
  const std::string ts = captured([&](std::FILE* f) { write_timeseries_csv(f, spec, *all); });
  CHECK(captured([&](std::FILE* f) { write_merged_timeseries(f, *m); }) == ts);
  // A run gives the same row whichever shard ran it.
  for (size_t r = 0; r < 12; ++r) CHECK(without_wall(m->runs[r].csv + "\n") == without_wall(sweep_csv_row((*all)[r]) + "\n"));
}

TEST_CASE("merge: a missing run, a duplicated run, a foreign shard are one-line errors naming it", "[sweep][shard]") {
  TempFile sc("shard_test_small_errors.json", kSmall);  // own name: ctest -j runs test cases in parallel
  SweepSpec spec = small_spec(sc.path);
  spec.sample_every = 0;
  write_shard_file(spec, 0, 3, "shard_e0.shard");
  write_shard_file(spec, 1, 3, "shard_e1.shard");
  write_shard_file(spec, 2, 3, "shard_e2.shard");
  SweepSpec other = spec;
  other.seeds = 3;  // another sweep: more seeds
  write_shard_file(other, 0, 3, "shard_other.shard");
  TempFile junk("shard_junk.shard", "run,seed\n1,2\n");
  std::string err;
  CHECK_FALSE(merge_shards({"shard_e0.shard", "shard_e2.shard"}, err));
  CHECK(err == "runs 1, 4, 7 and 10 are missing from the shards (the sweep has 12 runs, 0-11); rerun with "
               "'portsim sweep … --runs 1,4,7,10 --out FILE.shard' and merge again");
  CHECK_FALSE(merge_shards({"shard_e0.shard", "shard_e1.shard", "shard_e2.shard", "shard_e1.shard"}, err));
  CHECK(err == "run 1 appears twice: in shard_e1.shard and in shard_e1.shard");
  CHECK_FALSE(merge_shards({"shard_e0.shard", "shard_e1.shard", "shard_e2.shard", "shard_other.shard"}, err));
  CHECK(err.rfind("shard_other.shard: belongs to another sweep than shard_e0.shard (fingerprint ", 0) == 0);
  CHECK_FALSE(merge_shards({"shard_junk.shard"}, err));
  CHECK(err == "shard_junk.shard: not a portsim shard (expected what 'portsim sweep … --shard I/N --out FILE.shard' "
               "writes): invalid JSON");
  CHECK_FALSE(merge_shards({"shard_nonexistent.shard"}, err));
  CHECK(err == "shard_nonexistent.shard: cannot open the shard file");
  // A rerun of the missing runs completes the sweep.
  SweepSpec fix = spec;
  fix.runs = *parse_runs("1,4,7,10", err);
  write_shard_file(fix, 0, 1, "shard_fix.shard");
  CHECK(merge_shards({"shard_e0.shard", "shard_e2.shard", "shard_fix.shard"}, err));
  for (const char* f : {"shard_e0.shard", "shard_e1.shard", "shard_e2.shard", "shard_other.shard", "shard_fix.shard"})
    std::remove(f);
}

TEST_CASE("sweep: the fingerprint covers the scenario, the variations and the seeds, not the layout", "[sweep][shard]") {
  TempFile a("shard_fp_a.json", kSmall);
  TempFile b("shard_fp_b.json", std::string("// same scenario, other layout\n") + kSmall + "\n");
  std::string err;
  auto fp = [&](SweepSpec s) {
    auto p = plan_sweep(s, err);
    REQUIRE(p);
    return p->fingerprint;
  };
  const SweepSpec sa = small_spec(a.path);
  CHECK(fp(sa) == fp(small_spec(b.path)));
  SweepSpec shard = sa;
  shard.shard_index = 1;
  shard.shard_count = 4;
  CHECK(fp(shard) == fp(sa));
  SweepSpec seeds = sa;
  seeds.seeds = 3;
  CHECK(fp(seeds) != fp(sa));
  SweepSpec values = sa;
  values.vary[0].values.back() = "81";
  CHECK(fp(values) != fp(sa));
  TempFile c("shard_fp_c.json", std::string(kSmall).replace(std::string(kSmall).find("\"seed\": 7"), 9, "\"seed\": 8"));
  CHECK(fp(small_spec(c.path)) != fp(sa));
}

TEST_CASE("sweep: every errno has a CSV column, 0 when none; the time series counts per interval", "[sweep]") {
  TempFile sc("shard_test_small_ts.json", kSmall);
  const SweepSpec spec = small_spec(sc.path);
  std::string err;
  auto rows = run_sweep(spec, err);
  REQUIRE(rows);
  const std::string header = sweep_csv_header(spec);
  CHECK(header.find(",connects_ok,EACCES,EADDRINUSE,EADDRNOTAVAIL,") != std::string::npos);
  CHECK(header.find(",ETIMEDOUT,first_eaddrnotavail_s,") != std::string::npos);
  CHECK(header.find(",requests_failed,expectations_failed,virtual_s,wall_s") != std::string::npos);
  // Row 0 (20/s: below 1000/60 s, nothing fails) has as many columns as the header.
  const auto commas = [](const std::string& s) { return std::count(s.begin(), s.end(), ','); };
  CHECK(commas(sweep_csv_row((*rows)[0])) == commas(header));
  CHECK((*rows)[0].rep.connect_errors.empty());
  // 80/s, tcp_tw_reuse 0: ports run out at 12.5 s; the intervals add up to the totals.
  const SweepRow& r = (*rows)[8];
  const auto lines = timeseries_csv_rows(r);
  REQUIRE(lines.size() == r.rep.samples.size());
  uint64_t ok = 0, eaddrnotavail = 0;
  const std::string th = timeseries_csv_header(spec);
  for (const auto& line : lines) {
    ok += std::stoull(field(th, line, "connects_ok"));
    eaddrnotavail += std::stoull(field(th, line, "EADDRNOTAVAIL"));
  }
  CHECK(ok == 1000);
  CHECK(eaddrnotavail == 1400);
  // The sample at 15 s covers connects 800 … 1199 (at k/80 s; a sample at the same instant as
  // a connect comes first: timers before calls): 800 … 999 get the last free ports, 1000 …
  // 1199 fail.
  REQUIRE(lines.size() > 3);
  CHECK(field(th, lines[3], "t_s") == "15.000000");
  CHECK(field(th, lines[3], "connects_ok") == "200");
  CHECK(field(th, lines[3], "EADDRNOTAVAIL") == "200");
  CHECK(field(th, lines[3], "time_wait") == field(th, lines[3], "bound_ports"));
}

TEST_CASE("sweep: --vary creates missing keys; pool 0 and null mean no pool; a failed expectation is counted",
          "[sweep]") {
  TempFile sc("shard_test_check.json", kWithCheck);
  std::string err;
  SweepSpec spec;
  spec.file = sc.path;
  spec.vary.push_back(*parse_vary("/workloads/0/rate=20,80", err));
  spec.vary.push_back(*parse_vary("/machines/0/sysctls/net.ipv4.tcp_tw_reuse=0,1", err));  // no "sysctls" yet
  auto rows = run_sweep(spec, err);
  REQUIRE(rows);
  REQUIRE(rows->size() == 4);
  CHECK((*rows)[0].rep.expectation_failures == 0);  // 20/s: 600 ports used by 29 s
  CHECK((*rows)[2].rep.expectation_failures == 1);  // 80/s, reuse 0: the range is exhausted at 29 s
  CHECK((*rows)[3].rep.expectation_failures == 0);  // 80/s, reuse 1: TIME_WAIT recycled
  CHECK((*rows)[3].rep.st.tw_recycled > 0);
  CHECK(field(sweep_csv_header(spec), sweep_csv_row((*rows)[2]), "expectations_failed") == "1");
  CHECK(field(sweep_csv_header(spec), sweep_csv_row((*rows)[0]), "expectations_failed") == "0");

  SweepSpec pool;
  pool.file = sc.path;
  pool.vary.push_back(*parse_vary("/workloads/0/pool=0,null,4", err));
  rows = run_sweep(pool, err);
  REQUIRE(rows);
  CHECK((*rows)[0].rep.connects == 601);  // 20/s × 30 s, plus the timeline's probe
  CHECK((*rows)[1].rep.connects == 601);
  CHECK((*rows)[2].rep.connects == 5);  // 4 pooled connections and the probe
  CHECK((*rows)[2].rep.requests == 600);

  SweepSpec bad;
  bad.file = sc.path;
  bad.vary.push_back(*parse_vary("/workloads/3/rate=1", err));
  CHECK_FALSE(run_sweep(bad, err));
  CHECK(err == "shard_test_check.json: --vary /workloads/3/rate: the pointer does not lead into the scenario "
               "(/workloads has 1 element, no [3])");
  bad.vary = {*parse_vary("/name/x=1", err)};
  CHECK_FALSE(run_sweep(bad, err));
  CHECK(err == "shard_test_check.json: --vary /name/x: the pointer does not lead into the scenario (/name is not an "
               "object or an array)");
}

TEST_CASE("load: timeline may be left out when there are workloads, not otherwise", "[load]") {
  CHECK_FALSE(load_scenario_text(kSmall, "t.json").error);
  auto lr = load_scenario_text(R"({"machines": [{"name": "c"}]})", "t.json");
  REQUIRE(lr.error);
  CHECK(lr.error->message ==
        "t.json: $: missing required key 'timeline' (an array of calls; it may be left out when there are workloads)");
}
