// "did you mean" suggestions for unknown names (ninja's SpellcheckStringV).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace portsim {

// The closest candidate within a small edit distance, or "" when none is close.
std::string_view spellcheck(std::string_view word, const std::vector<std::string_view>& candidates);
// ", did you mean 'x'?" or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates);

}  // namespace portsim
