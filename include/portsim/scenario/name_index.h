// Socket names with "{i}": the pattern "c{i}" of a repeated call names c0, c1, … Which pattern
// a name belongs to is found without scanning the patterns: each is filed under its prefix and
// suffix, and a name is split around each run of digits it holds (1 to 18 digits, no leading
// zero: what sock_name() produces). The cost of a lookup depends on the name's length (at most
// kMaxSockName bytes), not on how many patterns exist; used by the loader and the runner.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portsim::scenario {

constexpr size_t kMaxSockName = 255;  // bytes in a socket name ("sock", "as")

template <class V>
class PatternIndex {
 public:
  // `pattern` holds "{i}" (the first occurrence is the repetition number).
  void add(std::string_view pattern, V v) {
    const size_t at = pattern.find("{i}");
    by_key_[key(pattern.substr(0, at), pattern.substr(at + 3))].push_back(std::move(v));
  }
  // Calls f(k, v) for every pattern that names `n` as its repetition k.
  template <class F>
  void for_each_match(std::string_view n, F&& f) const {
    if (by_key_.empty()) return;
    for (size_t s = 0; s < n.size(); ++s) {
      if (!is_digit(n[s])) continue;
      uint64_t k = 0;
      for (size_t e = s; e < n.size() && e - s < 18 && is_digit(n[e]); ++e) {
        if (e > s && n[s] == '0') break;  // "07" is no repetition number
        k = k * 10 + uint64_t(n[e] - '0');
        auto it = by_key_.find(key(n.substr(0, s), n.substr(e + 1)));
        if (it == by_key_.end()) continue;
        for (const V& v : it->second) f(k, v);
      }
    }
  }
  bool empty() const { return by_key_.empty(); }

 private:
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  static std::string key(std::string_view prefix, std::string_view suffix) {
    std::string k = std::to_string(prefix.size());
    k += ':';
    k += prefix;
    k += suffix;
    return k;
  }
  std::unordered_map<std::string, std::vector<V>> by_key_;
};

}  // namespace portsim::scenario
