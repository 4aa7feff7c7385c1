// --explain output: blocks of lines (a time header, the kernel functions' steps, a result line),
// printed as they come, or — under --explain-filter — kept or dropped block by block.
#pragma once
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "portsim/base/time.h"

namespace portsim::trace {

// `--explain-filter sock=NAME,errno=EADDRNOTAVAIL,from=10s,to=12s` (every key optional).
struct ExplainFilter {
  std::string sock;        // blocks that name this socket (the call's, or a state change's)
  std::optional<int> err;  // only call results with this errno
  Nanos from = 0, to = UINT64_MAX;
  bool active() const { return !sock.empty() || err || from != 0 || to != UINT64_MAX; }
};
// Parses the filter spec; nullopt and `error` (one line) on a bad key or value.
std::optional<ExplainFilter> parse_explain_filter(std::string_view spec, std::string& error);

class Explainer {
 public:
  explicit Explainer(std::FILE* out, ExplainFilter f = {}) : out_(out), f_(std::move(f)) {}
  // Opens a block: "<t> <header>", about socket `sock` (may be empty). Blocks may nest (a
  // segment's arrival completes a blocking connect): steps go to the innermost.
  void begin(Nanos t, std::string_view header, std::string_view sock);
  // Closes the innermost block with an optional result line ("<t> <result>") and, for a call,
  // its errno (0 = success); the filter decides whether the block is printed.
  void end(Nanos t, std::string_view result = {}, std::optional<int> err = std::nullopt);
  // One kernel step: "  <function> <what>".
  void step(std::string_view fn, std::string_view what);
  // A socket the innermost block touched (for sock=).
  void touch(std::string_view sock);
  // Is anything in the innermost block going to be printed? (False lets callers skip formatting.)
  bool wanted() const;

 private:
  struct Block {
    Nanos t;
    std::string text;
    bool names_sock;
    bool in_time;
  };
  void emit(std::string_view line);
  std::FILE* out_;
  ExplainFilter f_;
  std::vector<Block> open_;
};

}  // namespace portsim::trace
