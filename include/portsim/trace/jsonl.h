// The JSON Lines trace: one object per line, in event order; see README "Trace format".
// Written through OutputFile: a failed run leaves no partial file; "-" is stdout.
#pragma once
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "portsim/base/output_file.h"
#include "portsim/net/observer.h"
#include "portsim/trace/explain.h"

namespace portsim::trace {

class JsonlTrace final : public net::observer {
 public:
  using NameFn = std::function<std::string(net::sock_id)>;
  // An empty path makes a trace that writes nothing (explain output may still go to stderr).
  JsonlTrace(std::string path, NameFn name_of);
  ~JsonlTrace() override;
  bool ok() const { return path_.empty() || f_ != nullptr; }  // false: could not open
  bool enabled() const { return f_ != nullptr; }
  // Calls only: no table, state, packet or timer records.
  void set_calls_only(bool on) { calls_only_ = on; }
  bool tables() const { return f_ != nullptr && !calls_only_; }

  // Commit: flush, close and rename the temporary file into place. False on an I/O error.
  bool commit();
  // errno of the first failure to open or write (0: none).
  int error() const { return out_.error(); }
  bool failed() const { return !path_.empty() && out_.error() != 0; }
  // Abandon: remove the temporary file.
  void abandon();

  // A record assembled by the caller: `{"t":…,"ev":"<ev>",<body>}`.
  void record(uint64_t t, std::string_view ev, std::string_view body);

  void bind_bucket(const net::world&, net::table_op, uint32_t tb) override;
  void bind2_bucket(const net::world&, net::table_op, uint32_t tb2) override;
  void ehash(const net::world&, net::table_op, net::sock_id) override;
  void state_change(const net::world&, net::sock_id, net::tcp_state from, net::tcp_state to) override;
  // Every socket gets the next serial when it is allocated: the trace's "sk" is that serial,
  // unique for the whole run, although the model reuses freed slots.
  void sock_alloc(const net::world&, net::sock_id id) override {
    if (serial_.size() <= id) serial_.resize(size_t(id) + 1, 0);
    serial_[id] = next_serial_++;
    if (on_alloc_) on_alloc_(id);
  }
  uint64_t sk_id(net::sock_id id) const { return id < serial_.size() ? serial_[id] : id; }
  void set_on_alloc(std::function<void(net::sock_id)> f) { on_alloc_ = std::move(f); }
  // --explain: steps go to this explainer (null: not explaining).
  void set_explainer(Explainer* e) { explainer_ = e; }
  bool explaining() const override { return explainer_ && explainer_->wanted(); }
  void explain(std::string_view kernel_function, std::string_view what) override;
  void segment(const net::world&, const net::segment&, Nanos arrive, net::seg_fate) override;  // "pkt"
  void timer(const net::world&, net::timer_kind, net::sock_id) override;                         // "timer"
  std::string sock_name(const net::world&, net::sock_id id) const override;

 private:
  std::string path_;
  OutputFile out_;
  std::FILE* f_ = nullptr;  // out_.get() while open
  NameFn name_of_;
  std::function<void(net::sock_id)> on_alloc_;
  std::vector<uint64_t> serial_;  // slot -> serial of the socket in it
  uint64_t next_serial_ = 0;
  Explainer* explainer_ = nullptr;
  bool calls_only_ = false;
};

// JSON string escaping for trace bodies.
std::string json_str(std::string_view s);

}  // namespace portsim::trace
