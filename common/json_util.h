// Canonical JSON and content hashes. A job's id is the SHA-256 of the canonical
// form of its parameters: object keys sorted, no whitespace, and numbers in one
// spelling (an integral double such as 4096.0 is written 4096; other doubles in
// the shortest form that round-trips), so key order and number spelling never
// change a hash.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

namespace gb {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// An immutable Json that copies share instead of duplicating: a job's params and
// device, held by each of its result rows (a roofline job has 19). Reads as a
// const Json& (implicitly, or through -> and *); assigning a Json replaces the
// shared value for this holder only. Default: null.
class SharedJson {
 public:
  SharedJson() = default;
  SharedJson(Json j) : p_(std::make_shared<const Json>(std::move(j))) {}  // NOLINT: implicit by design
  SharedJson& operator=(Json j) {
    p_ = std::make_shared<const Json>(std::move(j));
    return *this;
  }
  const Json& get() const { return p_ ? *p_ : null_json(); }
  operator const Json&() const { return get(); }  // NOLINT: implicit by design
  const Json& operator*() const { return get(); }
  const Json* operator->() const { return &get(); }

 private:
  static const Json& null_json() {
    static const Json kNull;
    return kNull;
  }
  std::shared_ptr<const Json> p_;
};

// Returns `j` with every integral floating-point number turned into an integer
// (recursively). Keys of objects are sorted by nlohmann::json itself.
Json normalize_json(const Json& j);

// The canonical serialization described above.
std::string canonical_json(const Json& j);

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// sha256_hex(canonical_json(j)).substr(0, 16): the id shown to users and stored.
std::string content_hash(const Json& j);

}  // namespace gb
