// Canonical JSON and content hashes. A job's id is the SHA-256 of the canonical
// form of its parameters: object keys sorted, no whitespace, and numbers in one
// spelling (an integral double such as 4096.0 is written 4096; other doubles in
// the shortest form that round-trips), so key order and number spelling never
// change a hash.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace gb {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

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
