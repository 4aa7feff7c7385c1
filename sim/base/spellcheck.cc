#include "portsim/base/spellcheck.h"

#include <algorithm>
#include <numeric>

namespace portsim {

namespace {
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}
}  // namespace

std::string_view spellcheck(std::string_view word, const std::vector<std::string_view>& candidates) {
  const size_t limit = std::max<size_t>(2, word.size() / 4);
  std::string_view best;
  size_t best_d = limit + 1;
  for (auto c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) { best_d = d; best = c; }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates) {
  const auto s = spellcheck(word, candidates);
  return s.empty() ? std::string() : ", did you mean '" + std::string(s) + "'?";
}

}  // namespace portsim
