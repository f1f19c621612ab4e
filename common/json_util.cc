#include "common/json_util.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include <openssl/evp.h>

#include "common/check.h"

namespace gb {

Json normalize_json(const Json& j) {
  if (j.is_object()) {
    Json out = Json::object();
    for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = normalize_json(it.value());
    return out;
  }
  if (j.is_array()) {
    Json out = Json::array();
    for (const auto& v : j) out.push_back(normalize_json(v));
    return out;
  }
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e15) {
      return Json(static_cast<int64_t>(d));
    }
    return j;
  }
  if (j.is_number_unsigned()) {
    uint64_t u = j.get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Json(static_cast<int64_t>(u));
  }
  return j;
}

std::string canonical_json(const Json& j) {
  // nlohmann::json sorts object keys (std::map) and prints doubles with the
  // shortest round-trip representation, so normalizing numbers is all that is left.
  return normalize_json(j).dump(-1, ' ', false, Json::error_handler_t::strict);
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  GB_CHECK(EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) == 1);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

std::string content_hash(const Json& j) { return sha256_hex(canonical_json(j)).substr(0, 16); }

}  // namespace gb
