// portsim-replay: reading the plan (tools/oracle/scenario.py plan(); README.md "Plan").
#include "plan.h"

#include <fstream>
#include <sstream>

#include "errors.h"

namespace portsim_replay {
namespace {

using nlohmann::json;

/// The member `key` of object `j` at JSON path `path`, or PlanError.
const json& member(const json& j, const std::string& path, const char* key) {
  if (!j.is_object() || !j.contains(key)) throw PlanError(path + ": expected a member \"" + key + "\"");
  return j.at(key);
}

std::string get_string(const json& j, const std::string& path) {
  if (!j.is_string()) throw PlanError(path + ": expected a string");
  return j.get<std::string>();
}

long long get_int(const json& j, const std::string& path) {
  if (!j.is_number_integer()) throw PlanError(path + ": expected an integer");
  return j.get<long long>();
}

bool get_bool(const json& j, const std::string& path) {
  if (!j.is_boolean()) throw PlanError(path + ": expected true or false");
  return j.get<bool>();
}

int get_family(const json& j, const std::string& path) {
  long long f = get_int(j, path);
  if (f != 4 && f != 6) throw PlanError(path + ": expected 4 or 6");
  return static_cast<int>(f);
}

const json& get_array(const json& j, const std::string& path) {
  if (!j.is_array()) throw PlanError(path + ": expected an array");
  return j;
}

std::optional<std::string> opt_string(const json& j, const std::string& path, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return get_string(j.at(key), path + "." + key);
}

Endpoint endpoint_from_json(const json& j, const std::string& path) {
  Endpoint e;
  e.ip = get_string(member(j, path, "ip"), path + ".ip");
  const json& port = member(j, path, "port");
  if (!port.is_null()) {
    long long p = get_int(port, path + ".port");
    if (p < 0 || p > 65535) throw PlanError(path + ".port: expected 0..65535");
    e.port = static_cast<int>(p);
  }
  e.family = get_family(member(j, path, "family"), path + ".family");
  return e;
}

Host host_from_json(const json& j, const std::string& path) {
  Host h;
  h.name = get_string(member(j, path, "name"), path + ".name");
  const json& addrs = get_array(member(j, path, "addresses"), path + ".addresses");
  for (std::size_t k = 0; k < addrs.size(); ++k) {
    std::string p = path + ".addresses[" + std::to_string(k) + "]";
    HostAddress a;
    a.cidr = get_string(member(addrs[k], p, "cidr"), p + ".cidr");
    a.ip = get_string(member(addrs[k], p, "ip"), p + ".ip");
    a.network = get_string(member(addrs[k], p, "network"), p + ".network");
    a.prefixlen = static_cast<int>(get_int(member(addrs[k], p, "prefixlen"), p + ".prefixlen"));
    a.family = get_family(member(addrs[k], p, "family"), p + ".family");
    h.addresses.push_back(a);
  }
  const json& sys = get_array(member(j, path, "sysctls"), path + ".sysctls");
  for (std::size_t k = 0; k < sys.size(); ++k) {
    std::string p = path + ".sysctls[" + std::to_string(k) + "]";
    if (!sys[k].is_array() || sys[k].size() != 2) throw PlanError(p + ": expected [name, value]");
    h.sysctls.emplace_back(get_string(sys[k][0], p + "[0]"), get_string(sys[k][1], p + "[1]"));
  }
  return h;
}

Step step_from_json(const json& j, const std::string& path) {
  Step s;
  s.i = static_cast<int>(get_int(member(j, path, "i"), path + ".i"));
  const json& rep = member(j, path, "rep");
  if (!rep.is_null()) s.rep = static_cast<int>(get_int(rep, path + ".rep"));
  s.t = get_int(member(j, path, "t"), path + ".t");
  if (s.t < 0) throw PlanError(path + ".t: expected a time >= 0 (ns)");
  s.op = get_string(member(j, path, "op"), path + ".op");
  s.sock = opt_string(j, path, "sock");
  s.host = opt_string(j, path, "host");
  s.as = opt_string(j, path, "as");
  if (s.op == "sysctl") {
    s.sysctl_name = get_string(member(j, path, "name"), path + ".name");
    s.sysctl_value = get_string(member(j, path, "value"), path + ".value");
    if (!s.host) throw PlanError(path + ": a sysctl step needs \"host\"");
    return s;
  }
  if (!s.sock) throw PlanError(path + ": expected a member \"sock\"");
  if (j.contains("addr")) s.addr = endpoint_from_json(j.at("addr"), path + ".addr");
  if (j.contains("to")) s.to = endpoint_from_json(j.at("to"), path + ".to");
  if (j.contains("opts")) {
    const json& opts = get_array(j.at("opts"), path + ".opts");
    for (std::size_t k = 0; k < opts.size(); ++k) {
      std::string p = path + ".opts[" + std::to_string(k) + "]";
      if (!opts[k].is_array() || opts[k].size() != 2) throw PlanError(p + ": expected [name, value]");
      s.opts.push_back({get_string(opts[k][0], p + "[0]"), get_int(opts[k][1], p + "[1]")});
    }
  }
  if (j.contains("backlog")) s.backlog = static_cast<int>(get_int(j.at("backlog"), path + ".backlog"));
  if (j.contains("nonblock")) s.nonblock = get_bool(j.at("nonblock"), path + ".nonblock");
  if (j.contains("cred")) {
    const json& c = j.at("cred");
    Cred cred;
    cred.uid = static_cast<int>(get_int(member(c, path + ".cred", "uid"), path + ".cred.uid"));
    cred.cap_net_bind_service = get_bool(member(c, path + ".cred", "cap_net_bind_service"),
                                         path + ".cred.cap_net_bind_service");
    s.cred = cred;
  }
  if (s.op == "connect" && !s.to)
    throw PlanError(path + ": a connect step needs \"to\"");
  if (s.op == "bind" && !s.addr) throw PlanError(path + ": a bind step needs \"addr\"");
  if (s.op == "accept" && !s.as) throw PlanError(path + ": an accept step needs \"as\"");
  return s;
}

}  // namespace

Plan plan_from_json(const json& j) {
  if (!j.is_object()) throw PlanError("$: expected a plan object");
  std::string format = get_string(member(j, "$", "format"), "$.format");
  if (format != "portsim-replay-plan/1")
    throw PlanError("$.format: expected \"portsim-replay-plan/1\", got \"" + format + "\"");
  Plan plan;
  if (j.contains("name")) plan.name = get_string(j.at("name"), "$.name");
  if (j.contains("until") && !j.at("until").is_null()) plan.until = get_int(j.at("until"), "$.until");
  if (j.contains("exact")) plan.exact = get_bool(j.at("exact"), "$.exact");
  const json& hosts = get_array(member(j, "$", "hosts"), "$.hosts");
  for (std::size_t k = 0; k < hosts.size(); ++k)
    plan.hosts.push_back(host_from_json(hosts[k], "$.hosts[" + std::to_string(k) + "]"));
  if (plan.hosts.empty()) throw PlanError("$.hosts: expected at least one host");
  if (j.contains("externals")) {
    const json& ext = get_array(j.at("externals"), "$.externals");
    for (std::size_t k = 0; k < ext.size(); ++k) {
      std::string p = "$.externals[" + std::to_string(k) + "]";
      External e;
      e.ep = endpoint_from_json(ext[k], p);
      e.text = get_string(member(ext[k], p, "endpoint"), p + ".endpoint");
      e.answer = get_string(member(ext[k], p, "answer"), p + ".answer");
      if (e.answer != "accept" && e.answer != "refuse")
        throw PlanError(p + ".answer: expected \"accept\" or \"refuse\"");
      plan.externals.push_back(e);
    }
  }
  if (j.contains("sockets")) {
    const json& socks = j.at("sockets");
    if (!socks.is_object()) throw PlanError("$.sockets: expected an object");
    for (const auto& [name, v] : socks.items()) {
      std::string p = "$.sockets." + name;
      SocketKind k;
      k.family = get_family(member(v, p, "family"), p + ".family");
      std::string type = get_string(member(v, p, "type"), p + ".type");
      if (type != "stream" && type != "dgram") throw PlanError(p + ".type: expected \"stream\" or \"dgram\"");
      k.dgram = type == "dgram";
      if (v.contains("echo")) k.echo = get_bool(v.at("echo"), p + ".echo");
      plan.sockets[name] = k;
    }
  }
  const json& steps = get_array(member(j, "$", "steps"), "$.steps");
  for (std::size_t k = 0; k < steps.size(); ++k)
    plan.steps.push_back(step_from_json(steps[k], "$.steps[" + std::to_string(k) + "]"));
  return plan;
}

Plan plan_load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw PlanError(path + ": cannot read the plan");
  std::stringstream text;
  text << in.rdbuf();
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::parse_error& ex) {
    throw PlanError(path + ": invalid JSON (byte " + std::to_string(ex.byte) + ")");
  }
  try {
    return plan_from_json(j);
  } catch (const PlanError& ex) {
    throw PlanError(path + ": " + ex.what());
  }
}

}  // namespace portsim_replay
