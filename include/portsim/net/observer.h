// Hooks through which the model reports table changes and explanations (the trace layer
// implements them). The model never formats anything itself; with no observer it pays nothing.
#pragma once
#include <string>
#include <string_view>

#include "portsim/base/time.h"
#include "portsim/net/sock.h"

namespace portsim::net {

struct world;

enum class table_op : uint8_t { create, destroy, update };

class observer {
 public:
  virtual ~observer() = default;
  virtual void bind_bucket(const world&, table_op, uint32_t tb) = 0;
  virtual void bind2_bucket(const world&, table_op, uint32_t tb2) = 0;
  virtual void ehash(const world&, table_op, sock_id) = 0;  // create = insert, destroy = remove
  virtual void state_change(const world&, sock_id, tcp_state from, tcp_state to) = 0;
  // A socket slot was (re)used: names given to an earlier socket of that id no longer apply.
  virtual void sock_alloc(const world&, sock_id) {}
  // --explain: which kernel function took which step. Only called when explaining() is true.
  virtual bool explaining() const = 0;
  virtual void explain(std::string_view kernel_function, std::string_view what) = 0;
  // --explain: the name a socket answers to in the scenario ("sk<id>" when it has none).
  virtual std::string sock_name(const world&, sock_id id) const { return "sk" + std::to_string(id); }
};

// How the model arms timers without knowing the engine (net/ never includes engine/).
enum class timer_kind : uint8_t { timewait, retransmit, keepalive };
class timer_sink {
 public:
  virtual ~timer_sink() = default;
  // Fire `kind` for `sk` at virtual time `when` unless sk.timer_gen has changed meanwhile.
  virtual void arm(Nanos when, timer_kind kind, sock_id sk, uint32_t gen) = 0;
};

}  // namespace portsim::net
