// The tokenizer pipeline's pieces (engine/tokenizer/tokenizer_pipeline.h).
#include "engine/tokenizer/tokenizer_pipeline.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <functional>
#include <sstream>
#include <unordered_map>

#include "common/json_parse.h"

namespace gb::engine::tok {

bool is_space_char(std::string_view s, size_t i, size_t* len) {
  auto c = static_cast<unsigned char>(s[i]);
  if (c == ' ' || (c >= 0x09 && c <= 0x0D)) {
    *len = 1;
    return true;
  }
  size_t n = tok::utf8_len(s, i);
  std::string_view ch = s.substr(i, n);
  static const char* const kSpaces[] = {"\u0085", "\u00A0", "\u1680", "\u2000", "\u2001",
                                        "\u2002", "\u2003", "\u2004", "\u2005", "\u2006",
                                        "\u2007", "\u2008", "\u2009", "\u200A", "\u2028",
                                        "\u2029", "\u202F", "\u205F", "\u3000"};
  for (const char* sp : kSpaces)
    if (ch == sp) {
      *len = n;
      return true;
    }
  return false;
}

static std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  if (from.empty()) return std::string(s);
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t f = s.find(from, pos);
    if (f == std::string_view::npos) break;
    out.append(s.substr(pos, f - pos));
    out.append(to);
    pos = f + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

std::string run_normalizer(const Normalizer& n, std::string s) {
  switch (n.kind) {
    case Normalizer::kNFC: return tok::unicode_normalize(s, tok::NormForm::kNFC);
    case Normalizer::kNFD: return tok::unicode_normalize(s, tok::NormForm::kNFD);
    case Normalizer::kNFKC: return tok::unicode_normalize(s, tok::NormForm::kNFKC);
    case Normalizer::kNFKD: return tok::unicode_normalize(s, tok::NormForm::kNFKD);
    case Normalizer::kLowercase: return tok::unicode_lowercase(s);
    case Normalizer::kPrepend: return s.empty() ? s : n.text + s;
    case Normalizer::kReplace: {
      if (!n.regex) return replace_all(s, n.text, n.content);
      std::string out;
      size_t prev = 0;
      for (auto [b, e] : n.regex->find_all(s)) {
        out.append(s, prev, b - prev);
        out += n.content;
        prev = e;
      }
      out.append(s, prev, std::string::npos);
      return out;
    }
    case Normalizer::kSequence:
      for (const auto& c : n.children) s = run_normalizer(c, std::move(s));
      return s;
  }
  return s;
}

// The reference's NormalizedString::split: `matches` are the pattern's matches;
// the text between them is a non-match.
static std::vector<Piece> split_piece(const Piece& p, const std::vector<std::pair<size_t, size_t>>& matches,
                               SplitBehavior behavior, bool invert) {
  struct Span {
    size_t b, e;
    bool match;
  };
  std::vector<Span> spans;
  const std::string& s = p.text;
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (prev != b) spans.push_back({prev, b, invert});
    spans.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != s.size()) spans.push_back({prev, s.size(), invert});

  std::vector<Span> out;  // match = "remove" here
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (auto sp : spans) out.push_back({sp.b, sp.e, false});
      break;
    case SplitBehavior::kRemoved:
      out = spans;
      break;
    case SplitBehavior::kContiguous: {
      bool prev_match = false;
      for (auto sp : spans) {
        if (sp.match == prev_match && !out.empty()) out.back().e = sp.e;
        else out.push_back({sp.b, sp.e, false});
        prev_match = sp.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool prev_match = false;
      for (auto sp : spans) {
        if (sp.match && !prev_match && !out.empty()) out.back().e = sp.e;
        else out.push_back({sp.b, sp.e, false});
        prev_match = sp.match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool prev_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !prev_match && !out.empty()) out.back().b = it->b;
        else out.push_back({it->b, it->e, false});
        prev_match = it->match;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
  }
  std::vector<Piece> pieces;
  for (auto sp : out) {
    if (sp.match || sp.e == sp.b) continue;
    pieces.push_back({s.substr(sp.b, sp.e - sp.b), p.at_start && sp.b == 0});
  }
  return pieces;
}

static std::vector<std::pair<size_t, size_t>> find_literal(std::string_view s, std::string_view lit) {
  std::vector<std::pair<size_t, size_t>> m;
  if (lit.empty()) return m;
  for (size_t pos = s.find(lit); pos != std::string_view::npos; pos = s.find(lit, pos + lit.size()))
    m.emplace_back(pos, pos + lit.size());
  return m;
}

// One matched character each, for character-class patterns (Digits).
static std::vector<std::pair<size_t, size_t>> per_char(const std::vector<std::pair<size_t, size_t>>& m,
                                                std::string_view s) {
  std::vector<std::pair<size_t, size_t>> out;
  for (auto [b, e] : m)
    for (size_t i = b; i < e; i += tok::utf8_len(s, i)) out.emplace_back(i, i + tok::utf8_len(s, i));
  return out;
}

std::vector<Piece> run_pre_tokenizer(const PreTokenizer& pt, std::vector<Piece> pieces) {
  std::vector<Piece> out;
  switch (pt.kind) {
    case PreTokenizer::kSequence:
      for (const auto& c : pt.children) pieces = run_pre_tokenizer(c, std::move(pieces));
      return pieces;
    case PreTokenizer::kSplit:
      for (const auto& p : pieces) {
        auto m = pt.regex ? pt.regex->find_all(p.text) : find_literal(p.text, pt.literal);
        for (auto& q : split_piece(p, m, pt.behavior, pt.invert)) out.push_back(std::move(q));
      }
      return out;
    case PreTokenizer::kDigits:
      for (const auto& p : pieces) {
        auto m = per_char(pt.regex->find_all(p.text), p.text);
        auto beh = pt.split ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
        for (auto& q : split_piece(p, m, beh, false)) out.push_back(std::move(q));
      }
      return out;
    case PreTokenizer::kByteLevel:
      for (auto& p : pieces) {
        if (pt.add_prefix_space && (p.text.empty() || p.text[0] != ' ')) p.text = " " + p.text;
        std::vector<Piece> parts;
        if (pt.use_regex) parts = split_piece(p, pt.regex->find_all(p.text), SplitBehavior::kIsolated, false);
        else if (!p.text.empty()) parts.push_back(p);
        for (auto& q : parts) {
          std::string mapped;
          for (unsigned char c : q.text) mapped += tok::byte_to_unicode(c);
          out.push_back({std::move(mapped), q.at_start});
        }
      }
      return out;
    case PreTokenizer::kMetaspace:
      for (auto& p : pieces) {
        p.text = replace_all(p.text, " ", pt.literal);
        bool starts = p.text.compare(0, pt.literal.size(), pt.literal) == 0;
        if (!starts && (pt.prepend == PreTokenizer::kAlways ||
                        (pt.prepend == PreTokenizer::kFirst && p.at_start)))
          p.text = pt.literal + p.text;
        if (pt.split) {
          for (auto& q : split_piece(p, find_literal(p.text, pt.literal),
                                     SplitBehavior::kMergedWithNext, false))
            out.push_back(std::move(q));
        } else if (!p.text.empty()) {
          out.push_back(std::move(p));
        }
      }
      return out;
  }
  return pieces;
}

// Rust's String::from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD.
static std::string utf8_lossy(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    size_t k = 0;  // continuation bytes that fit
    if (need > 0) {
      while (k < need && i + 1 + k < s.size()) {
        auto cc = static_cast<unsigned char>(s[i + 1 + k]);
        unsigned char l = k == 0 ? lo : 0x80, h = k == 0 ? hi : 0xBF;
        if (cc < l || cc > h) break;
        ++k;
      }
    }
    if (need > 0 && k == need) {
      out.append(s, i, need + 1);
      i += need + 1;
    } else {
      out += "\uFFFD";
      i += 1 + k;
    }
  }
  return out;
}

std::vector<std::string> run_decoder(const Decoder& d, std::vector<std::string> toks) {
  switch (d.kind) {
    case Decoder::kSequence:
      for (const auto& c : d.children) toks = run_decoder(c, std::move(toks));
      return toks;
    case Decoder::kByteLevel: {
      std::string bytes;
      // As the reference: a token whose characters are all in the byte alphabet
      // gives those bytes, any other token its own UTF-8.
      for (const auto& t : toks) {
        std::string tb;
        bool all = true;
        for (auto ch : tok::utf8_chars(t)) {
          int b = tok::unicode_to_byte(ch);
          if (b < 0) {
            all = false;
            break;
          }
          tb += static_cast<char>(b);
        }
        bytes += all ? tb : t;
      }
      return {d.lossy ? utf8_lossy(bytes) : bytes};
    }
    case Decoder::kReplace:
      for (auto& t : toks) t = replace_all(t, d.pattern, d.content);
      return toks;
    case Decoder::kFuse: {
      std::string all;
      for (const auto& t : toks) all += t;
      return {all};
    }
    case Decoder::kByteFallback: {
      std::vector<std::string> out;
      std::string pending;
      bool have_pending = false;
      auto flush = [&]() {
        if (!have_pending) return;
        // Valid UTF-8 as a whole, or one U+FFFD per byte (as the reference does).
        bool valid = true;
        for (size_t i = 0; i < pending.size();) {
          size_t n = tok::utf8_len(pending, i);
          if (n == 1 && static_cast<unsigned char>(pending[i]) >= 0x80) { valid = false; break; }
          i += n;
        }
        if (valid) out.push_back(pending);
        else for (size_t i = 0; i < pending.size(); ++i) out.push_back("\uFFFD");
        pending.clear();
        have_pending = false;
      };
      for (auto& t : toks) {
        if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
            std::isxdigit(static_cast<unsigned char>(t[3])) &&
            std::isxdigit(static_cast<unsigned char>(t[4]))) {
          pending += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
          have_pending = true;
        } else {
          flush();
          out.push_back(std::move(t));
        }
      }
      flush();
      return out;
    }
    case Decoder::kStrip:
      for (auto& t : toks) {
        size_t b = 0, e = t.size();
        for (size_t k = 0; k < d.start && t.compare(b, d.content.size(), d.content) == 0 &&
                           b + d.content.size() <= e;
             ++k)
          b += d.content.size();
        for (size_t k = 0; k < d.stop && e >= b + d.content.size() &&
                           t.compare(e - d.content.size(), d.content.size(), d.content) == 0;
             ++k)
          e -= d.content.size();
        t = t.substr(b, e - b);
      }
      return toks;
    case Decoder::kMetaspace:
      // As the reference: in the first token every replacement character is dropped
      // (when a prefix was prepended), elsewhere it becomes a space.
      for (size_t i = 0; i < toks.size(); ++i)
        toks[i] = replace_all(toks[i], d.content, i == 0 && d.prepend ? "" : " ");
      return toks;
  }
  return toks;
}

// ---- JSON parsing with paths -----------------------------------------------------


Result<std::string> get_str(const Ctx& c, const json& j, const std::string& path, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string())
    return c.err(path + "." + key, "expected a string");
  return j[key].get<std::string>();
}

bool get_bool(const json& j, const char* key, bool dflt) {
  if (j.is_object() && j.contains(key) && j[key].is_boolean()) return j[key].get<bool>();
  return dflt;
}

// {"String": s} or {"Regex": r}: a literal or a compiled regex.
static Status parse_pattern(const Ctx& c, const json& j, const std::string& path, std::string* literal,
                     std::shared_ptr<const Regex>* regex) {
  if (!j.is_object()) return c.err(path, "expected {\"String\": ...} or {\"Regex\": ...}");
  if (j.contains("String") && j["String"].is_string()) {
    *literal = j["String"].get<std::string>();
    return Status::Ok();
  }
  if (j.contains("Regex") && j["Regex"].is_string()) {
    auto r = Regex::compile(j["Regex"].get<std::string>());
    if (!r.ok()) return c.err(path + ".Regex", r.message());
    *regex = *r;
    return Status::Ok();
  }
  return c.err(path, "expected {\"String\": ...} or {\"Regex\": ...}");
}

Result<Normalizer> parse_normalizer(const Ctx& c, const json& j, const std::string& path) {
  auto type = get_str(c, j, path, "type");
  if (!type.ok()) return type.error();
  const std::string& t = *type;
  Normalizer n;
  if (t == "NFC") n.kind = Normalizer::kNFC;
  else if (t == "NFD") n.kind = Normalizer::kNFD;
  else if (t == "NFKC") n.kind = Normalizer::kNFKC;
  else if (t == "NFKD") n.kind = Normalizer::kNFKD;
  else if (t == "Lowercase") n.kind = Normalizer::kLowercase;
  else if (t == "Prepend") {
    n.kind = Normalizer::kPrepend;
    auto s = get_str(c, j, path, "prepend");
    if (!s.ok()) return s.error();
    n.text = *s;
  } else if (t == "Replace") {
    n.kind = Normalizer::kReplace;
    auto s = get_str(c, j, path, "content");
    if (!s.ok()) return s.error();
    n.content = *s;
    GB_RETURN_IF_ERROR(parse_pattern(c, j.value("pattern", json()), path + ".pattern", &n.text, &n.regex));
  } else if (t == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array())
      return c.err(path + ".normalizers", "expected an array");
    for (size_t i = 0; i < j["normalizers"].size(); ++i) {
      auto ch = parse_normalizer(c, j["normalizers"][i], path + ".normalizers[" + std::to_string(i) + "]");
      if (!ch.ok()) return ch.error();
      n.children.push_back(std::move(*ch));
    }
  } else {
    return c.err(path + ".type", "normalizer \"" + t +
                                     "\" is not supported (NFC, NFD, NFKC, NFKD, Lowercase, "
                                     "Prepend, Replace, Sequence are)");
  }
  return n;
}

constexpr const char* kGpt2Regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

Result<PreTokenizer> parse_pre_tokenizer(const Ctx& c, const json& j, const std::string& path) {
  auto type = get_str(c, j, path, "type");
  if (!type.ok()) return type.error();
  const std::string& t = *type;
  PreTokenizer p;
  if (t == "ByteLevel") {
    p.kind = PreTokenizer::kByteLevel;
    p.add_prefix_space = get_bool(j, "add_prefix_space", true);
    p.use_regex = get_bool(j, "use_regex", true);
    if (p.use_regex) {
      auto r = Regex::compile(kGpt2Regex);
      if (!r.ok()) return c.err(path, r.message());
      p.regex = *r;
    }
  } else if (t == "Split") {
    p.kind = PreTokenizer::kSplit;
    GB_RETURN_IF_ERROR(parse_pattern(c, j.value("pattern", json()), path + ".pattern", &p.literal, &p.regex));
    auto b = get_str(c, j, path, "behavior");
    if (!b.ok()) return b.error();
    if (*b == "Isolated") p.behavior = SplitBehavior::kIsolated;
    else if (*b == "Removed") p.behavior = SplitBehavior::kRemoved;
    else if (*b == "MergedWithPrevious") p.behavior = SplitBehavior::kMergedWithPrevious;
    else if (*b == "MergedWithNext") p.behavior = SplitBehavior::kMergedWithNext;
    else if (*b == "Contiguous") p.behavior = SplitBehavior::kContiguous;
    else return c.err(path + ".behavior", "unknown split behavior \"" + *b + "\"");
    p.invert = get_bool(j, "invert", false);
  } else if (t == "Metaspace") {
    p.kind = PreTokenizer::kMetaspace;
    auto r = get_str(c, j, path, "replacement");
    if (!r.ok()) return r.error();
    p.literal = *r;
    p.split = get_bool(j, "split", true);
    std::string scheme = j.value("prepend_scheme", std::string());
    if (scheme.empty()) scheme = get_bool(j, "add_prefix_space", true) ? "always" : "never";
    if (scheme == "always") p.prepend = PreTokenizer::kAlways;
    else if (scheme == "first") p.prepend = PreTokenizer::kFirst;
    else if (scheme == "never") p.prepend = PreTokenizer::kNever;
    else return c.err(path + ".prepend_scheme", "expected always, first or never");
  } else if (t == "Digits") {
    p.kind = PreTokenizer::kDigits;
    p.split = get_bool(j, "individual_digits", false);
    auto r = Regex::compile("\\p{N}+");
    if (!r.ok()) return c.err(path, r.message());
    p.regex = *r;
  } else if (t == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      return c.err(path + ".pretokenizers", "expected an array");
    for (size_t i = 0; i < j["pretokenizers"].size(); ++i) {
      auto ch = parse_pre_tokenizer(c, j["pretokenizers"][i],
                                    path + ".pretokenizers[" + std::to_string(i) + "]");
      if (!ch.ok()) return ch.error();
      p.children.push_back(std::move(*ch));
    }
  } else {
    return c.err(path + ".type", "pre_tokenizer \"" + t +
                                     "\" is not supported (ByteLevel, Split, Metaspace, Digits, "
                                     "Sequence are)");
  }
  return p;
}

Result<Decoder> parse_decoder(const Ctx& c, const json& j, const std::string& path) {
  auto type = get_str(c, j, path, "type");
  if (!type.ok()) return type.error();
  const std::string& t = *type;
  Decoder d;
  if (t == "ByteLevel") d.kind = Decoder::kByteLevel;
  else if (t == "ByteFallback") d.kind = Decoder::kByteFallback;
  else if (t == "Fuse") d.kind = Decoder::kFuse;
  else if (t == "Replace") {
    d.kind = Decoder::kReplace;
    auto s = get_str(c, j, path, "content");
    if (!s.ok()) return s.error();
    d.content = *s;
    std::shared_ptr<const Regex> re;
    GB_RETURN_IF_ERROR(parse_pattern(c, j.value("pattern", json()), path + ".pattern", &d.pattern, &re));
    if (re) return c.err(path + ".pattern", "a Regex pattern in the Replace decoder is not supported");
  } else if (t == "Strip") {
    d.kind = Decoder::kStrip;
    auto s = get_str(c, j, path, "content");
    if (!s.ok()) return s.error();
    d.content = *s;
    d.start = j.value("start", 0);
    d.stop = j.value("stop", 0);
  } else if (t == "Metaspace") {
    d.kind = Decoder::kMetaspace;
    auto r = get_str(c, j, path, "replacement");
    if (!r.ok()) return r.error();
    d.content = *r;
    std::string scheme = j.value("prepend_scheme", std::string());
    d.prepend = scheme.empty() ? get_bool(j, "add_prefix_space", true) : scheme != "never";
  } else if (t == "Sequence") {
    if (!j.contains("decoders") || !j["decoders"].is_array())
      return c.err(path + ".decoders", "expected an array");
    for (size_t i = 0; i < j["decoders"].size(); ++i) {
      auto ch = parse_decoder(c, j["decoders"][i], path + ".decoders[" + std::to_string(i) + "]");
      if (!ch.ok()) return ch.error();
      d.children.push_back(std::move(*ch));
    }
  } else {
    return c.err(path + ".type", "decoder \"" + t +
                                     "\" is not supported (ByteLevel, Replace, ByteFallback, Fuse, "
                                     "Strip, Metaspace, Sequence are)");
  }
  return d;
}

}  // namespace gb::engine::tok
