#include "portsim/base/errno_name.h"

#include <cerrno>
#include <array>
#include <utility>

namespace portsim {

namespace {
constexpr std::array<std::pair<int, std::string_view>, 21> kErrnos{{
    {0, "OK"},
    {EADDRINUSE, "EADDRINUSE"},
    {EADDRNOTAVAIL, "EADDRNOTAVAIL"},
    {EACCES, "EACCES"},
    {EINVAL, "EINVAL"},
    {ECONNREFUSED, "ECONNREFUSED"},
    {ECONNRESET, "ECONNRESET"},
    {ETIMEDOUT, "ETIMEDOUT"},
    {EINPROGRESS, "EINPROGRESS"},
    {EALREADY, "EALREADY"},
    {EISCONN, "EISCONN"},
    {ENOTCONN, "ENOTCONN"},
    {EAGAIN, "EAGAIN"},
    {EBADF, "EBADF"},
    {EAFNOSUPPORT, "EAFNOSUPPORT"},
    {EPIPE, "EPIPE"},
    {EHOSTUNREACH, "EHOSTUNREACH"},
    {ENETUNREACH, "ENETUNREACH"},
    {ENOPROTOOPT, "ENOPROTOOPT"},
    {ECONNABORTED, "ECONNABORTED"},
    {EDESTADDRREQ, "EDESTADDRREQ"},  // send() on an unconnected UDP socket without an address
}};
}  // namespace

std::string_view errno_name(int err) {
  for (const auto& [value, name] : kErrnos)
    if (value == err) return name;
  return "E?";
}

std::optional<int> errno_from_name(std::string_view name) {
  for (const auto& [value, n] : kErrnos)
    if (n == name) return value;
  return std::nullopt;
}

std::vector<std::string_view> known_errno_names() {
  std::vector<std::string_view> v;
  for (const auto& [value, n] : kErrnos)
    if (value) v.push_back(n);
  return v;
}

}  // namespace portsim
