// Coordinator addresses with their default port (common/coordinator_address.h).
#include "common/coordinator_address.h"

#include <algorithm>
#include <cctype>

namespace gb {
namespace {

bool valid_port(const std::string& p) {
  if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return false;
  const int v = std::stoi(p);
  return v >= 1 && v <= 65535;
}

}  // namespace

Result<std::string> coordinator_target(const std::string& address) {
  const std::string expected = " (expected HOST, HOST:PORT or [IPV6]:PORT; the port defaults to " +
                               std::to_string(kDefaultCoordinatorPort) + ")";
  if (address.rfind("unix:", 0) == 0 || address.find("://") != std::string::npos) return address;
  if (address.empty()) return Error{"empty coordinator address" + expected};
  const std::string def = std::to_string(kDefaultCoordinatorPort);
  if (address[0] == '[') {
    const size_t close = address.find(']');
    if (close == std::string::npos || close == 1) return Error{"'" + address + "': bad IPv6 address" + expected};
    if (close + 1 == address.size()) return address + ":" + def;
    if (address[close + 1] != ':' || !valid_port(address.substr(close + 2)))
      return Error{"'" + address + "': bad port" + expected};
    return address;
  }
  const size_t colon = address.find(':');
  if (colon == std::string::npos) return address + ":" + def;
  if (address.find(':', colon + 1) != std::string::npos)
    return Error{"'" + address + "': an IPv6 address needs brackets, e.g. [::1]:" + def + expected};
  if (colon == 0) return Error{"'" + address + "': no host" + expected};
  if (!valid_port(address.substr(colon + 1))) return Error{"'" + address + "': bad port" + expected};
  return address;
}

}  // namespace gb
