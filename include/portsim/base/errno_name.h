// Errnos by symbol, as traces, scenarios and messages spell them. Values are Linux's (<cerrno>).
#pragma once
#include <optional>
#include <string_view>
#include <vector>

namespace portsim {

// "EADDRNOTAVAIL" for 99; "OK" for 0; "E?<n>" for an errno we never produce.
std::string_view errno_name(int err);
// The inverse, for the errnos the model can return; nullopt for an unknown name.
std::optional<int> errno_from_name(std::string_view name);
// Every errno name the model can return (not "OK"), in the table's order.
std::vector<std::string_view> known_errno_names();

}  // namespace portsim
