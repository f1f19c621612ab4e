#include "coordinator/grid/grid_yaml.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string_view>
#include <vector>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "coordinator/grid/grid.h"

namespace gb::coord {
namespace {

using OJson = nlohmann::ordered_json;

constexpr size_t kMaxYamlErrors = 50;
// Values a YAML text may expand to, aliases expanded: what a text of its size could
// hold without aliases (a value and a separator: 2 bytes each), plus this many (so
// that a small grid may still repeat a list through aliases). A 377-byte text of 8
// levels of 10 aliases expanded to the old fixed cap of 8,000,000 values: minutes of
// work and gigabytes under grid_fuzz.
constexpr size_t kAliasAllowance = 100'000;
size_t max_values(size_t text_bytes) { return text_bytes / 2 + kAliasAllowance; }

// The offset of the first byte of `s` that is not well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, at most U+10FFFF), or npos. JSON text is UTF-8,
// and a string that is not cannot be written out again (nlohmann's dump throws).
size_t invalid_utf8_at(const std::string& s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = b[i];
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c < 0x80) len = 1;
    else if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xBF;
      if (b[i + k] < lo_k || b[i + k] > hi_k) return i;
    }
    i += len;
  }
  return std::string::npos;
}

std::string where(const YAML::Mark& m) {
  if (m.is_null()) return "";
  return "line " + std::to_string(m.line + 1) + " column " + std::to_string(m.column + 1);
}

struct Converter {
  std::string source;
  JsonLimits limits;
  std::vector<std::string> errors;
  size_t dropped = 0;
  size_t values = 0;
  size_t text_bytes = 0;   // of the YAML text
  size_t value_limit = 0;  // max_values(text_bytes)
  size_t bytes = 0;  // of the scalars and keys converted, aliases expanded

  void add(const std::string& path, const std::string& what, const YAML::Mark& mark) {
    if (errors.size() >= kMaxYamlErrors) {
      ++dropped;
      return;
    }
    std::string w = where(mark);
    errors.push_back(source + ": " + path + ": " + what + (w.empty() ? "" : " (" + w + ")"));
  }

  // Types a plain scalar by the YAML 1.2 core schema.
  OJson plain(const std::string& s, const std::string& path, const YAML::Mark& mark) {
    static const std::regex kInt("[-+]?[0-9]+");
    static const std::regex kOct("0o[0-7]+");
    static const std::regex kHex("0x[0-9a-fA-F]+");
    static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
    static const std::regex kInf("[-+]?\\.(inf|Inf|INF)");
    static const std::regex kNan("\\.(nan|NaN|NAN)");
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    if (std::regex_match(s, kInt)) return integer(s, 10, path, mark);
    if (std::regex_match(s, kOct)) return integer(s.substr(2), 8, path, mark);
    if (std::regex_match(s, kHex)) return integer(s.substr(2), 16, path, mark);
    if (std::regex_match(s, kFloat)) {
      double v = std::strtod(s.c_str(), nullptr);
      if (!std::isfinite(v)) {
        add(path, "number " + s + " is outside the range of a double", mark);
        return nullptr;
      }
      return v;
    }
    if (std::regex_match(s, kInf) || std::regex_match(s, kNan)) {
      add(path, "'" + s + "' cannot be written in JSON; expected a finite number", mark);
      return nullptr;
    }
    return s;
  }

  OJson integer(std::string digits, int base, const std::string& path, const YAML::Mark& mark) {
    if (!digits.empty() && digits[0] == '+') digits.erase(0, 1);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
    if (ec != std::errc() || ptr != digits.data() + digits.size()) {
      add(path, "integer '" + digits + "' is out of range (at most 64 bits)", mark);
      return nullptr;
    }
    return v;
  }

  // Counts a scalar's or key's bytes against the size limit and checks it is UTF-8;
  // false (with an error) when it is not usable.
  bool text_ok(const std::string& s, const std::string& path, const YAML::Mark& mark, const char* what) {
    bytes += s.size();
    if (bytes > limits.max_bytes) {
      if (bytes - s.size() <= limits.max_bytes)
        add(path, "more than " + std::to_string(limits.max_bytes / kMiB) +
                      " MiB of text once aliases are expanded; expected a smaller grid", mark);
      return false;
    }
    if (size_t at = invalid_utf8_at(s); at != std::string::npos) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(s[at]));
      add(path, std::string(what) + " is not UTF-8 text (byte " + hex + " at offset " + std::to_string(at) +
                    "); expected UTF-8", mark);
      return false;
    }
    return true;
  }

  OJson scalar(const YAML::Node& n, const std::string& path) {
    const std::string& tag = n.Tag();
    const std::string& s = n.Scalar();
    if (!text_ok(s, path, n.Mark(), "the value") || !text_ok(tag, path, n.Mark(), "the tag")) return nullptr;
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return s;  // quoted, block or !!str
    if (tag == "?" || tag.empty()) return plain(s, path, n.Mark());
    if (tag == "tag:yaml.org,2002:null") {
      OJson v = plain(s, path, n.Mark());
      if (!v.is_null()) add(path, "!!null value '" + s + "' is not null", n.Mark());
      return nullptr;
    }
    if (tag == "tag:yaml.org,2002:bool") {
      OJson v = plain(s, path, n.Mark());
      if (!v.is_boolean()) add(path, "!!bool value '" + s + "' is not true or false", n.Mark());
      return v;
    }
    if (tag == "tag:yaml.org,2002:int") {
      OJson v = plain(s, path, n.Mark());
      if (!v.is_number_integer()) add(path, "!!int value '" + s + "' is not an integer", n.Mark());
      return v;
    }
    if (tag == "tag:yaml.org,2002:float") {
      OJson v = plain(s, path, n.Mark());
      if (!v.is_number()) {
        add(path, "!!float value '" + s + "' is not a number", n.Mark());
        return v;
      }
      return v.get<double>();
    }
    add(path, "unsupported tag '" + tag + "'", n.Mark());
    return s;
  }

  // `depth`: the collections around `n`. Aliases can make a small text a huge
  // document, so the values converted are counted too.
  OJson convert(const YAML::Node& n, const std::string& path, int depth = 0) {
    if (++values > value_limit) {
      if (values == value_limit + 1)
        add(path, "more than " + std::to_string(value_limit) + " values once aliases are expanded (its " +
                      std::to_string(text_bytes) + " bytes hold at most " + std::to_string(text_bytes / 2) + " + " +
                      std::to_string(kAliasAllowance) + "); expected a smaller grid",
            n.Mark());
      return nullptr;
    }
    if ((n.IsSequence() || n.IsMap()) && depth >= limits.max_depth) {
      add(path, "nested deeper than " + std::to_string(limits.max_depth) + " levels; expected at most " +
                    std::to_string(limits.max_depth), n.Mark());
      return nullptr;
    }
    switch (n.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return nullptr;
      case YAML::NodeType::Scalar:
        return scalar(n, path);
      case YAML::NodeType::Sequence: {
        OJson out = OJson::array();
        size_t i = 0;
        for (const auto& child : n) out.push_back(convert(child, json_path_index(path, i++), depth + 1));
        return out;
      }
      case YAML::NodeType::Map: {
        OJson out = OJson::object();
        std::map<std::string, YAML::Mark> seen;
        for (const auto& kv : n) {
          const YAML::Node& key = kv.first;
          if (!key.IsScalar()) {
            add(path, "mapping keys must be strings", key.Mark());
            continue;
          }
          const std::string& k = key.Scalar();
          if (!text_ok(k, path, key.Mark(), "a mapping key")) continue;
          std::string child = json_path_key(path, k);
          auto [it, fresh] = seen.emplace(k, key.Mark());
          if (!fresh) {
            std::string first = where(it->second);
            add(child, "duplicate key" + (first.empty() ? "" : "; first given at " + first), key.Mark());
            continue;
          }
          out[k] = convert(kv.second, child, depth + 1);
        }
        return out;
      }
    }
    return nullptr;
  }
};

// Where each document of a YAML stream starts, the events in between ignored.
struct DocumentStarts : YAML::EventHandler {
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// The first document, and the start of a second one if the stream has one. Not
// YAML::LoadAll: yaml-cpp 0.7 never ends it on some malformed flow text (a stray
// `}` after a flow mapping, as grid_fuzz found: `{"a": [1]} }, "b": 2}`), handing
// out one empty document after another without advancing until memory runs out
// (14 GB in 20 s for 154 bytes); a parser asked for two documents at most stops.
struct FirstDocument {
  YAML::Node root;
  bool empty = true;
  std::optional<YAML::Mark> second;
};
FirstDocument load_first_document(const std::string& text) {
  FirstDocument out;
  {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    if (parser.HandleNextDocument(starts) && parser.HandleNextDocument(starts) && starts.starts.size() > 1)
      out.second = starts.starts[1];
    out.empty = starts.starts.empty();
  }
  if (!out.empty) out.root = YAML::Load(text);
  return out;
}

}  // namespace

Result<nlohmann::ordered_json> yaml_to_json(const std::string& text, const std::string& source) {
  const JsonLimits limits = grid_json_limits();
  if (text.size() > limits.max_bytes) return Error{source + ": " + size_limit_message(text.size(), limits.max_bytes)};
  FirstDocument doc;
  try {
    doc = load_first_document(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp stops its recursive parser at 2,000 levels; the converter below
    // stops at the grid's limit, so both read the same.
    std::string w = where(e.mark);
    return Error{source + ": " + (w.empty() ? "" : w + ": ") + "nested deeper than " +
                 std::to_string(limits.max_depth) + " levels; expected at most " + std::to_string(limits.max_depth)};
  } catch (const YAML::ParserException& e) {
    std::string w = where(e.mark);
    return Error{source + ": " + (w.empty() ? "" : w + ": ") + e.msg};
  } catch (const YAML::Exception& e) {
    return Error{source + ": " + e.what()};
  } catch (const std::exception& e) {
    return Error{source + ": cannot read YAML: " + e.what()};
  }
  if (doc.empty) return OJson(nullptr);
  if (doc.second) {
    std::string w = where(*doc.second);
    return Error{source + ": " + (w.empty() ? "" : w + ": ") + "expected one YAML document, found more"};
  }
  Converter c{source, limits, {}, 0, 0, text.size(), max_values(text.size())};
  OJson out = c.convert(doc.root, "$");
  if (!c.errors.empty()) {
    std::string msg;
    for (const auto& e : c.errors) msg += (msg.empty() ? "" : "\n") + e;
    if (c.dropped > 0) msg += "\n" + source + ": " + std::to_string(c.dropped) + " more errors not shown";
    return Error{msg};
  }
  return out;
}

}  // namespace gb::coord
