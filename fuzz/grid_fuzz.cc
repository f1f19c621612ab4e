// libFuzzer target over the grid parser (coordinator/grid/grid.h): every input is read
// as a grid file twice, once as JSON (fuzz.json) and once as YAML (fuzz.yaml), and
// validated and expanded as `gridbench expand` would. The parser must answer with a
// grid or an error whose every line names the file, never crash, throw or read out
// of bounds (ASan/UBSan watch that); an accepted grid's jobs must have 16-hex-digit
// hashes, unique, and parameters that are JSON objects.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

#include "coordinator/grid/grid.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void parse_as(const std::string& text, const std::string& source) {
  gb::Result<gb::coord::Grid> g = gb::coord::parse_grid_text(text, source);
  if (!g.ok()) {
    std::istringstream lines(g.message());
    for (std::string line; std::getline(lines, line);) check(line.rfind(source + ": ", 0) == 0);
    return;
  }
  std::set<std::string> hashes;
  for (const gb::coord::GridJob& j : g->jobs) {
    check(j.hash.size() == 16 && hashes.insert(j.hash).second);
    check(j.params.is_object());
  }
  (void)g->spec.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  parse_as(text, "fuzz.json");
  parse_as(text, "fuzz.yaml");
  return 0;
}
