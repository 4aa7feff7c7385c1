// `portsim heatmap`: the local port range of one host over virtual time, as a grid of cells
// (a row per port, or per bin of ports when the range is larger than the rows asked for; a
// column per time bin), each coloured by the state that held most of its port-time: free,
// SYN_SENT (connecting: SYN_SENT or SYN_RECV), ESTABLISHED (or CLOSE_WAIT), FIN_WAIT2 (closing:
// FIN_WAIT1, FIN_WAIT2 also as a TW sock, CLOSING, LAST_ACK), TIME_WAIT, held by bind (a bind
// bucket whose owners have no connection: bind(), listen()), reserved
// (ip_local_reserved_ports). A port's state is the strongest of its owners', in that order.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "portsim/net/inet_addr.h"
#include "portsim/net/observer.h"

namespace portsim::trace {

enum class port_cat : uint8_t { free, reserved, bound, time_wait, closing, connecting, established };
inline constexpr int kPortCats = 7;
const char* port_cat_name(port_cat c);

struct PortMapOptions {
  uint16_t ns = 0;                     // the host
  std::optional<net::endpoint> dest;   // only connections to this peer count (else all)
  std::optional<std::pair<uint16_t, uint16_t>> ports;  // default: the host's ip_local_port_range
  uint32_t max_rows = 512, columns = 400;
};

struct PortGrid {
  uint16_t lo = 0, hi = 0;      // ports shown, inclusive
  uint32_t per_row = 1, rows = 0, cols = 0;
  Nanos end = 0;                // the time axis is [0, end]
  std::vector<uint8_t> cell;    // rows * cols, port_cat of the largest share
  std::vector<std::array<uint8_t, kPortCats>> share;  // per cell, each state's share in %
  std::array<uint64_t, kPortCats> cells_of{};         // cells per dominant state
};

// Collects each port's state changes while a scenario runs (an observer like the trace).
class PortMap final : public net::observer {
 public:
  explicit PortMap(PortMapOptions o) : o_(std::move(o)) {}
  void bind_bucket(const net::world& w, net::table_op, uint32_t tb) override;
  void bind2_bucket(const net::world& w, net::table_op, uint32_t tb2) override;
  void ehash(const net::world& w, net::table_op, net::sock_id id) override;
  void state_change(const net::world& w, net::sock_id id, net::tcp_state, net::tcp_state) override;
  bool explaining() const override { return false; }
  void explain(std::string_view, std::string_view) override {}
  void call(const net::world& w, const net::call_event&) override { settle(w); }
  bool wants_calls() const override { return true; }
  void finish(const net::world& w, Nanos end) override;

  // The grid, once the run has finished.
  PortGrid grid() const;
  const PortMapOptions& options() const { return o_; }

 private:
  struct Change { Nanos t; uint16_t port; port_cat cat; };
  void mark(const net::world& w, uint16_t ns, uint16_t port);
  void settle(const net::world& w);  // recompute the ports marked at earlier instants
  port_cat state_of(const net::world& w, uint16_t port) const;

  PortMapOptions o_;
  bool started_ = false;
  uint16_t lo_ = 0, hi_ = 0;
  std::vector<port_cat> now_;      // current state per port in [lo, hi]
  std::vector<uint16_t> dirty_;
  std::vector<bool> is_dirty_;
  Nanos dirty_at_ = 0;
  std::vector<Change> changes_;
  Nanos end_ = 0;
};

// One self-contained HTML page (inline CSS and JS, a canvas; no network): the grid with axes,
// a legend and hover details. After drawing, the page writes what it drew (cells per state)
// into <pre id="drawn"> as JSON.
void write_heatmap_html(std::FILE* f, const PortGrid& g, const std::string& title);
// The grid as JSON (what the PNG renderer reads).
void write_heatmap_json(std::FILE* f, const PortGrid& g, const std::string& title);

}  // namespace portsim::trace
