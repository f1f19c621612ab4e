// The Hugging Face tokenizer (engine/tokenizer/tokenizer.h): the BPE model and the
// added tokens, loading tokenizer.json (with JSON paths in every error), encode and
// decode. The pipeline's pieces (normalizers, pre-tokenizers, post-processor,
// decoders) are tokenizer_pipeline.h, private to this implementation; the text
// helpers they share with others (UTF-8, byte-level alphabet, regexes) are
// tokenizer_text.h, and GGUF vocabularies are gguf_vocab.h.
#include "engine/tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <functional>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <queue>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/json_parse.h"
#include "engine/tokenizer/tokenizer_pipeline.h"
#include "engine/tokenizer/tokenizer_text.h"

namespace gb::engine {

using nlohmann::json;
using tok::Regex;
using namespace tok;  // the pipeline pieces (tokenizer_pipeline.h)

namespace {

// A byte that can be part of a word, for an added token's single_word.
bool is_word_byte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

}  // namespace

// ---- the tokenizer ---------------------------------------------------------------

struct Tokenizer::Impl {
  std::string source;
  // BPE model
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::string> id_to_token;  // model vocabulary by id ("" for holes)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;  // (a,b) -> (rank, new id)
  std::optional<int32_t> unk_id;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
  std::array<int32_t, 256> byte_ids{};  // <0xNN> ids, -1 when absent
  bool all_byte_ids = false;
  // Added tokens
  std::vector<AddedToken> added;
  std::unordered_map<int32_t, size_t> added_by_id;
  std::unordered_map<std::string, int32_t> added_by_content;
  std::array<std::vector<size_t>, 256> added_by_first_byte;  // indices, longest first
  // Pipeline
  std::optional<Normalizer> normalizer;
  std::optional<PreTokenizer> pre_tokenizer;
  PostProcessor post;
  std::optional<Decoder> decoder;
  std::optional<int32_t> bos, eos;
  int32_t vocab_size = 0;
  // Word cache (pre-token -> ids).
  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  void bpe_word(const std::string& w, std::vector<int32_t>* out) const;
  void encode_words(const std::string& normalized_segment, bool at_start,
                    std::vector<int32_t>* out) const;
  // Splits `s` on the added tokens with normalized == `normalized`; calls
  // on_token(id) and on_text(text, starts_at_0) in order.
  template <class FT, class FX>
  void split_added(std::string_view s, bool normalized, FT on_token, FX on_text) const;
};

void Tokenizer::Impl::bpe_word(const std::string& w, std::vector<int32_t>* out) const {
  if (ignore_merges) {
    auto it = vocab.find(w);
    if (it != vocab.end()) {
      out->push_back(it->second);
      return;
    }
  }
  bool cacheable = w.size() <= 256;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu);
    auto it = cache.find(w);
    if (it != cache.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  // Initial symbols: characters, byte fallback, unk (as the reference's merge_word).
  std::vector<int32_t> ids;
  std::optional<int32_t> pending_unk;
  for (auto ch : tok::utf8_chars(w)) {
    auto it = vocab.find(std::string(ch));
    if (it != vocab.end()) {
      if (pending_unk) ids.push_back(*pending_unk), pending_unk.reset();
      ids.push_back(it->second);
      continue;
    }
    if (byte_fallback) {
      bool all = true;
      for (unsigned char b : ch) all = all && byte_ids[b] >= 0;
      if (all) {
        for (unsigned char b : ch) ids.push_back(byte_ids[b]);
        continue;
      }
    }
    if (unk_id) {
      if (pending_unk && !fuse_unk) ids.push_back(*pending_unk);
      pending_unk = *unk_id;
    }
  }
  if (pending_unk) ids.push_back(*pending_unk);

  // Merges by rank, lowest rank first, leftmost among equal ranks.
  struct Sym {
    int32_t id;
    int prev, next;
    bool alive;
  };
  std::vector<Sym> syms(ids.size());
  for (size_t i = 0; i < ids.size(); ++i)
    syms[i] = {ids[i], static_cast<int>(i) - 1, i + 1 < ids.size() ? static_cast<int>(i) + 1 : -1, true};
  struct Cand {
    int32_t rank;
    int pos;
    int32_t new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> q;
  auto push = [&](int pos) {
    if (pos < 0 || syms[pos].next < 0) return;
    auto it = merges.find(key(syms[pos].id, syms[syms[pos].next].id));
    if (it != merges.end()) q.push({it->second.first, pos, it->second.second});
  };
  for (size_t i = 0; i + 1 < syms.size(); ++i) push(static_cast<int>(i));
  while (!q.empty()) {
    Cand c = q.top();
    q.pop();
    Sym& s = syms[c.pos];
    if (!s.alive || s.next < 0) continue;
    auto it = merges.find(key(s.id, syms[s.next].id));
    if (it == merges.end() || it->second.second != c.new_id) continue;
    Sym& r = syms[s.next];
    s.id = c.new_id;
    r.alive = false;
    s.next = r.next;
    if (s.next >= 0) syms[s.next].prev = c.pos;
    push(s.prev);
    push(c.pos);
  }
  std::vector<int32_t> result;
  for (int i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) result.push_back(syms[i].id);
  out->insert(out->end(), result.begin(), result.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu);
    if (cache.size() > 200000) cache.clear();
    cache.emplace(w, std::move(result));
  }
}

void Tokenizer::Impl::encode_words(const std::string& seg, bool at_start,
                                   std::vector<int32_t>* out) const {
  std::vector<Piece> pieces;
  if (!seg.empty()) pieces.push_back({seg, at_start});
  if (pre_tokenizer) pieces = run_pre_tokenizer(*pre_tokenizer, std::move(pieces));
  for (const auto& p : pieces) bpe_word(p.text, out);
}

template <class FT, class FX>
void Tokenizer::Impl::split_added(std::string_view s, bool normalized, FT on_token,
                                  FX on_text) const {
  size_t start_offset = 0;
  size_t i = 0;
  while (i < s.size()) {
    const AddedToken* best = nullptr;
    for (size_t k : added_by_first_byte[static_cast<unsigned char>(s[i])]) {
      const AddedToken& t = added[k];
      if (t.normalized != normalized) continue;
      if (s.compare(i, t.content.size(), t.content) == 0) {
        best = &t;
        break;
      }
    }
    if (!best) {
      ++i;
      continue;
    }
    size_t b = i, e = i + best->content.size();
    if (best->single_word) {
      bool ok_start = b == 0 || !is_word_byte(static_cast<unsigned char>(s[b - 1]));
      bool ok_stop = e == s.size() || !is_word_byte(static_cast<unsigned char>(s[e]));
      if (!ok_start || !ok_stop) {
        ++i;
        continue;
      }
    }
    if (best->lstrip) {
      while (b > start_offset) {
        size_t k = b - 1;
        while (k > start_offset && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        size_t len = 0;
        if (is_space_char(s, k, &len) && k + len == b) b = k;
        else break;
      }
    }
    if (best->rstrip) {
      size_t len = 0;
      while (e < s.size() && is_space_char(s, e, &len)) e += len;
    }
    if (start_offset < b) on_text(s.substr(start_offset, b - start_offset), start_offset == 0);
    on_token(best->id);
    start_offset = e;
    i = e;
  }
  if (start_offset < s.size()) on_text(s.substr(start_offset), start_offset == 0);
}

// ---- loading --------------------------------------------------------------------

Result<Tokenizer> Tokenizer::from_json_text(std::string_view text, const std::string& name) {
  Ctx c{name};
  JsonLimits limits;
  limits.max_bytes = 256 * kMiB;  // large vocabularies run to tens of MiB
  Result<json> parsed = parse_json(text, name, limits);
  if (!parsed) return Error{name + ": not valid JSON: " + parsed.message()};
  json j = std::move(*parsed);
  if (!j.is_object()) return c.err("$", "expected an object");
  auto impl = std::make_shared<Impl>();
  impl->source = name;
  impl->byte_ids.fill(-1);

  // Model.
  if (!j.contains("model") || !j["model"].is_object()) return c.err("$.model", "expected an object");
  const json& m = j["model"];
  std::string mtype = m.value("type", std::string("BPE"));
  if (mtype != "BPE")
    return c.err("$.model.type", "model \"" + mtype + "\" is not supported (only BPE is)");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(k) && m[k].is_string() && !m[k].get<std::string>().empty())
      return c.err(std::string("$.model.") + k, "a non-empty value is not supported");
  if (m.contains("dropout") && m["dropout"].is_number() && m["dropout"].get<double>() > 0)
    return c.err("$.model.dropout", "BPE dropout is not supported");
  if (!m.contains("vocab") || !m["vocab"].is_object())
    return c.err("$.model.vocab", "expected an object of token -> id");
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > (1 << 30))
      return c.err("$.model.vocab[\"" + it.key() + "\"]", "expected a non-negative integer id");
    int32_t id = it.value().get<int32_t>();
    impl->vocab[it.key()] = id;
    if (static_cast<size_t>(id) >= impl->id_to_token.size()) impl->id_to_token.resize(id + 1);
    impl->id_to_token[id] = it.key();
  }
  if (m.contains("merges")) {
    if (!m["merges"].is_array()) return c.err("$.model.merges", "expected an array");
    const json& ms = m["merges"];
    for (size_t r = 0; r < ms.size(); ++r) {
      std::string path = "$.model.merges[" + std::to_string(r) + "]";
      std::string a, b;
      if (ms[r].is_string()) {
        std::string s = ms[r].get<std::string>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          return c.err(path, "expected \"a b\" (two tokens separated by one space)");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (ms[r].is_array() && ms[r].size() == 2 && ms[r][0].is_string() && ms[r][1].is_string()) {
        a = ms[r][0].get<std::string>();
        b = ms[r][1].get<std::string>();
      } else {
        return c.err(path, "expected \"a b\" or [\"a\", \"b\"]");
      }
      auto ia = impl->vocab.find(a), ib = impl->vocab.find(b), iab = impl->vocab.find(a + b);
      if (ia == impl->vocab.end()) return c.err(path, "token \"" + a + "\" is not in the vocabulary");
      if (ib == impl->vocab.end()) return c.err(path, "token \"" + b + "\" is not in the vocabulary");
      if (iab == impl->vocab.end())
        return c.err(path, "merged token \"" + a + b + "\" is not in the vocabulary");
      impl->merges.emplace(Impl::key(ia->second, ib->second),
                           std::make_pair(static_cast<int32_t>(r), iab->second));
    }
  }
  if (m.contains("unk_token") && m["unk_token"].is_string()) {
    auto it = impl->vocab.find(m["unk_token"].get<std::string>());
    if (it == impl->vocab.end()) return c.err("$.model.unk_token", "not in the vocabulary");
    impl->unk_id = it->second;
  }
  impl->fuse_unk = get_bool(m, "fuse_unk", false);
  impl->byte_fallback = get_bool(m, "byte_fallback", false);
  impl->ignore_merges = get_bool(m, "ignore_merges", false);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    auto it = impl->vocab.find(buf);
    if (it != impl->vocab.end()) impl->byte_ids[b] = it->second;
  }

  // Normalizer (needed to normalize the content of normalized added tokens).
  if (j.contains("normalizer") && !j["normalizer"].is_null()) {
    auto n = parse_normalizer(c, j["normalizer"], "$.normalizer");
    if (!n.ok()) return n.error();
    impl->normalizer = std::move(*n);
  }
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
    auto p = parse_pre_tokenizer(c, j["pre_tokenizer"], "$.pre_tokenizer");
    if (!p.ok()) return p.error();
    impl->pre_tokenizer = std::move(*p);
  }
  if (j.contains("decoder") && !j["decoder"].is_null()) {
    auto d = parse_decoder(c, j["decoder"], "$.decoder");
    if (!d.ok()) return d.error();
    impl->decoder = std::move(*d);
  }

  // Added tokens.
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) return c.err("$.added_tokens", "expected an array");
    for (size_t i = 0; i < j["added_tokens"].size(); ++i) {
      const json& a = j["added_tokens"][i];
      std::string path = "$.added_tokens[" + std::to_string(i) + "]";
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0)
        return c.err(path + ".id", "expected a non-negative integer");
      auto content = get_str(c, a, path, "content");
      if (!content.ok()) return content.error();
      AddedToken t;
      t.id = a["id"].get<int32_t>();
      t.content = *content;
      t.original = *content;
      t.special = get_bool(a, "special", false);
      t.normalized = get_bool(a, "normalized", !t.special);
      t.lstrip = get_bool(a, "lstrip", false);
      t.rstrip = get_bool(a, "rstrip", false);
      t.single_word = get_bool(a, "single_word", false);
      impl->added_by_id[t.id] = impl->added.size();
      impl->added_by_content[t.content] = t.id;
      if (t.normalized && impl->normalizer) t.content = run_normalizer(*impl->normalizer, t.content);
      impl->added.push_back(std::move(t));
    }
  }

  for (size_t k = 0; k < impl->added.size(); ++k)
    if (!impl->added[k].content.empty())
      impl->added_by_first_byte[static_cast<unsigned char>(impl->added[k].content[0])].push_back(k);
  for (auto& v : impl->added_by_first_byte)
    std::stable_sort(v.begin(), v.end(), [&](size_t a, size_t b) {
      return impl->added[a].content.size() > impl->added[b].content.size();
    });

  // Post-processor.
  std::function<Result<PostProcessor>(const json&, const std::string&)> parse_post =
      [&](const json& p, const std::string& path) -> Result<PostProcessor> {
    PostProcessor pp;
    auto type = get_str(c, p, path, "type");
    if (!type.ok()) return type.error();
    auto lookup = [&](const std::string& tok, const std::string& tpath) -> Result<int32_t> {
      auto it = impl->added_by_content.find(tok);
      if (it != impl->added_by_content.end()) return it->second;
      auto v = impl->vocab.find(tok);
      if (v != impl->vocab.end()) return v->second;
      return c.err(tpath, "token \"" + tok + "\" is not in the vocabulary");
    };
    if (*type == "ByteLevel") return pp;
    if (*type == "Sequence") {
      pp.kind = PostProcessor::kSequence;
      if (!p.contains("processors") || !p["processors"].is_array())
        return c.err(path + ".processors", "expected an array");
      for (size_t i = 0; i < p["processors"].size(); ++i) {
        auto ch = parse_post(p["processors"][i], path + ".processors[" + std::to_string(i) + "]");
        if (!ch.ok()) return ch.error();
        pp.children.push_back(std::move(*ch));
      }
      return pp;
    }
    if (*type == "BertProcessing" || *type == "RobertaProcessing") {
      pp.kind = PostProcessor::kTemplate;
      for (const char* k : {"cls", "sep"}) {
        if (!p.contains(k) || !p[k].is_array() || p[k].empty() || !p[k][0].is_string())
          return c.err(path + "." + k, "expected [token, id]");
        auto id = lookup(p[k][0].get<std::string>(), path + "." + k);
        if (!id.ok()) return id.error();
        if (std::string(k) == "sep") pp.single.push_back({false, {}});
        pp.single.push_back({true, {*id}});
      }
      return pp;
    }
    if (*type != "TemplateProcessing")
      return c.err(path + ".type", "post_processor \"" + *type +
                                       "\" is not supported (TemplateProcessing, ByteLevel, "
                                       "BertProcessing, RobertaProcessing, Sequence are)");
    pp.kind = PostProcessor::kTemplate;
    if (!p.contains("single") || !p["single"].is_array()) return c.err(path + ".single", "expected an array");
    for (size_t i = 0; i < p["single"].size(); ++i) {
      const json& it = p["single"][i];
      std::string ipath = path + ".single[" + std::to_string(i) + "]";
      if (it.contains("Sequence")) {
        pp.single.push_back({false, {}});
      } else if (it.contains("SpecialToken") && it["SpecialToken"].contains("id")) {
        std::string sid = it["SpecialToken"]["id"].get<std::string>();
        std::vector<int32_t> ids;
        const json& st = p.value("special_tokens", json::object());
        if (st.contains(sid) && st[sid].contains("ids") && st[sid]["ids"].is_array()) {
          for (const auto& x : st[sid]["ids"]) ids.push_back(x.get<int32_t>());
        } else {
          auto id = lookup(sid, ipath + ".SpecialToken.id");
          if (!id.ok()) return id.error();
          ids.push_back(*id);
        }
        pp.single.push_back({true, std::move(ids)});
      } else {
        return c.err(ipath, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
    return pp;
  };
  if (j.contains("post_processor") && !j["post_processor"].is_null()) {
    auto p = parse_post(j["post_processor"], "$.post_processor");
    if (!p.ok()) return p.error();
    impl->post = std::move(*p);
  }

  int32_t max_id = static_cast<int32_t>(impl->id_to_token.size()) - 1;
  for (const auto& t : impl->added) max_id = std::max(max_id, t.id);
  impl->vocab_size = max_id + 1;
  return Tokenizer(std::shared_ptr<const Impl>(std::move(impl)));
}

Result<Tokenizer> Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot open the tokenizer file"};
  std::stringstream ss;
  ss << in.rdbuf();
  auto t = from_json_text(ss.str(), path);
  if (!t.ok()) return t;
  // bos/eos from tokenizer_config.json beside it.
  std::filesystem::path cfg = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(cfg)) {
    Result<json> parsed = read_json_file(cfg.string());
    if (!parsed) return parsed.error();
    json j = std::move(*parsed);
    if (!j.is_object()) return Error{cfg.string() + ": $: expected an object"};
    auto* impl = const_cast<Impl*>(t->impl_.get());
    for (const char* k : {"bos_token", "eos_token"}) {
      if (!j.contains(k) || j[k].is_null()) continue;
      std::string tokstr;
      if (j[k].is_string()) tokstr = j[k].get<std::string>();
      else if (j[k].is_object() && j[k].contains("content") && j[k]["content"].is_string())
        tokstr = j[k]["content"].get<std::string>();
      else return Error{cfg.string() + ": $." + k + ": expected a string or {\"content\": ...}"};
      auto id = t->token_id(tokstr);
      if (!id) return Error{cfg.string() + ": $." + k + ": token \"" + tokstr + "\" is not in " + path};
      (std::string(k) == "bos_token" ? impl->bos : impl->eos) = *id;
    }
  }
  return t;
}

Result<Tokenizer> Tokenizer::byte_level(int32_t vocab_size) {
  if (vocab_size < 256)
    return Error{"byte_level tokenizer: vocab_size " + std::to_string(vocab_size) +
                 " is below 256 (one token per byte)"};
  auto impl = std::make_shared<Impl>();
  impl->source = "byte_level:" + std::to_string(vocab_size);
  impl->byte_ids.fill(-1);
  impl->id_to_token.resize(vocab_size);
  for (int b = 0; b < 256; ++b) {
    impl->id_to_token[b] = tok::byte_to_unicode(static_cast<uint8_t>(b));
    impl->vocab[impl->id_to_token[b]] = b;
  }
  for (int32_t i = 256; i < vocab_size; ++i) {
    impl->id_to_token[i] = "<|filler_" + std::to_string(i) + "|>";
    impl->vocab[impl->id_to_token[i]] = i;
  }
  PreTokenizer p;
  p.kind = PreTokenizer::kByteLevel;
  p.add_prefix_space = false;
  p.use_regex = false;
  impl->pre_tokenizer = p;
  Decoder d;
  d.kind = Decoder::kByteLevel;
  d.lossy = false;  // round-trips any bytes
  impl->decoder = d;
  impl->vocab_size = vocab_size;
  return Tokenizer(std::shared_ptr<const Impl>(std::move(impl)));
}

// ---- encode / decode ----------------------------------------------------------------

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  const Impl& im = *impl_;
  std::vector<int32_t> ids;
  im.split_added(
      text, /*normalized=*/false, [&](int32_t id) { ids.push_back(id); },
      [&](std::string_view seg, bool at_start) {
        std::string norm = im.normalizer ? run_normalizer(*im.normalizer, std::string(seg))
                                         : std::string(seg);
        im.split_added(
            norm, /*normalized=*/true, [&](int32_t id) { ids.push_back(id); },
            [&](std::string_view sub, bool sub_start) {
              im.encode_words(std::string(sub), at_start && sub_start, &ids);
            });
      });
  if (!add_special) return ids;
  std::function<std::vector<int32_t>(const PostProcessor&, std::vector<int32_t>)> apply =
      [&](const PostProcessor& p, std::vector<int32_t> in) {
        if (p.kind == PostProcessor::kSequence) {
          for (const auto& c : p.children) in = apply(c, std::move(in));
          return in;
        }
        if (p.kind != PostProcessor::kTemplate) return in;
        std::vector<int32_t> out;
        for (const auto& it : p.single) {
          if (it.special) out.insert(out.end(), it.ids.begin(), it.ids.end());
          else out.insert(out.end(), in.begin(), in.end());
        }
        return out;
      };
  return apply(im.post, std::move(ids));
}

std::vector<std::string> Tokenizer::pieces(const std::vector<int32_t>& ids) const {
  const Impl& im = *impl_;
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    auto a = im.added_by_id.find(id);
    if (a != im.added_by_id.end()) {
      out.push_back(im.added[a->second].original);
      continue;
    }
    if (id >= 0 && static_cast<size_t>(id) < im.id_to_token.size()) out.push_back(im.id_to_token[id]);
    else out.emplace_back();
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const Impl& im = *impl_;
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (int32_t id : ids) {
    auto a = im.added_by_id.find(id);
    if (a != im.added_by_id.end()) {
      if (skip_special && im.added[a->second].special) continue;
      toks.push_back(pieces({id})[0]);
      continue;
    }
    if (id >= 0 && static_cast<size_t>(id) < im.id_to_token.size() && !im.id_to_token[id].empty())
      toks.push_back(im.id_to_token[id]);
  }
  if (!im.decoder) {
    std::string out;
    for (size_t i = 0; i < toks.size(); ++i) out += (i ? " " : "") + toks[i];
    return out;
  }
  std::string out;
  for (const auto& t : run_decoder(*im.decoder, std::move(toks))) out += t;
  return out;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  auto a = impl_->added_by_content.find(std::string(token));
  if (a != impl_->added_by_content.end()) return a->second;
  auto v = impl_->vocab.find(std::string(token));
  if (v != impl_->vocab.end()) return v->second;
  return std::nullopt;
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }
const std::string& Tokenizer::source() const { return impl_->source; }

}  // namespace gb::engine
