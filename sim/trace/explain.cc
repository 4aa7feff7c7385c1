#include "portsim/trace/explain.h"

#include <fmt/format.h>

#include "portsim/base/errno_name.h"

namespace portsim::trace {

std::optional<ExplainFilter> parse_explain_filter(std::string_view spec, std::string& error) {
  ExplainFilter f;
  size_t at = 0;
  while (at <= spec.size()) {
    const size_t comma = std::min(spec.find(',', at), spec.size());
    const std::string_view item = spec.substr(at, comma - at);
    at = comma + 1;
    const size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq), val = eq == item.npos ? std::string_view{} : item.substr(eq + 1);
    if (eq == item.npos || val.empty()) {
      error = fmt::format("--explain-filter: expected KEY=VALUE (sock, errno, from, to), got '{}'", item);
      return std::nullopt;
    }
    if (key == "sock") {
      f.sock = val;
    } else if (key == "errno") {
      f.err = val == "OK" ? std::optional<int>(0) : errno_from_name(val);
      if (!f.err) {
        error = fmt::format("--explain-filter: errno: expected an errno name like EADDRNOTAVAIL (or OK), got '{}'", val);
        return std::nullopt;
      }
    } else if (key == "from" || key == "to") {
      const auto d = parse_duration(val);
      if (!d) {
        error = fmt::format("--explain-filter: {}: expected a duration like \"10s\", got '{}'", key, val);
        return std::nullopt;
      }
      (key == "from" ? f.from : f.to) = *d;
    } else {
      error = fmt::format("--explain-filter: unknown key '{}' (expected sock, errno, from, to)", key);
      return std::nullopt;
    }
  }
  if (f.from > f.to) {
    error = "--explain-filter: from is after to";
    return std::nullopt;
  }
  return f;
}

void Explainer::emit(std::string_view line) {
  if (!f_.active()) {
    fmt::print(out_, "{}\n", line);
    return;
  }
  if (open_.empty()) return;  // outside any block nothing can be matched
  open_.back().text.append(line).push_back('\n');
}

void Explainer::begin(Nanos t, std::string_view header, std::string_view sock) {
  open_.push_back({t, {}, !f_.sock.empty() && sock == f_.sock, t >= f_.from && t <= f_.to});
  emit(fmt::format("{} {}", format_duration(t), header));
}

void Explainer::step(std::string_view fn, std::string_view what) {
  if (!wanted()) return;
  emit(fmt::format("  {:<28} {}", fn, what));
}

void Explainer::touch(std::string_view sock) {
  if (!open_.empty() && !f_.sock.empty() && sock == f_.sock) open_.back().names_sock = true;
}

bool Explainer::wanted() const { return !f_.active() || (!open_.empty() && open_.back().in_time); }

void Explainer::end(Nanos t, std::string_view result, std::optional<int> err) {
  if (open_.empty()) return;
  if (!result.empty()) emit(fmt::format("{} {}", format_duration(t), result));
  Block b = std::move(open_.back());
  open_.pop_back();
  if (!f_.active()) return;
  const bool keep = b.in_time && (f_.sock.empty() || b.names_sock) && (!f_.err || (err && *err == *f_.err));
  if (keep) fmt::print(out_, "{}", b.text);
}

}  // namespace portsim::trace
