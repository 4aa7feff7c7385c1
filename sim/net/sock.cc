#include "portsim/net/sock.h"

namespace portsim::net {

std::string_view tcp_state_name(tcp_state s) {
  switch (s) {
    case tcp_state::ESTABLISHED: return "ESTABLISHED";
    case tcp_state::SYN_SENT: return "SYN_SENT";
    case tcp_state::SYN_RECV: return "SYN_RECV";
    case tcp_state::FIN_WAIT1: return "FIN_WAIT1";
    case tcp_state::FIN_WAIT2: return "FIN_WAIT2";
    case tcp_state::TIME_WAIT: return "TIME_WAIT";
    case tcp_state::CLOSE: return "CLOSE";
    case tcp_state::CLOSE_WAIT: return "CLOSE_WAIT";
    case tcp_state::LAST_ACK: return "LAST_ACK";
    case tcp_state::LISTEN: return "LISTEN";
    case tcp_state::CLOSING: return "CLOSING";
    case tcp_state::NEW_SYN_RECV: return "NEW_SYN_RECV";
  }
  return "?";
}

}  // namespace portsim::net
