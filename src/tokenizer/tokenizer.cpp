// Loading, special-token handling, encode/decode and chat formatting. The
// SPM and BPE word-level algorithms are in spm.cpp and bpe.cpp.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <climits>
#include <cstdio>

#include "common/error.h"
#include "tokenizer/impl.h"
#include "tokenizer/utf8.h"

namespace specsteer {
namespace {

constexpr const char* kKeyModel = "tokenizer.ggml.model";
constexpr const char* kKeyPre = "tokenizer.ggml.pre";
constexpr const char* kKeyTokens = "tokenizer.ggml.tokens";
constexpr const char* kKeyScores = "tokenizer.ggml.scores";
constexpr const char* kKeyTypes = "tokenizer.ggml.token_type";

std::string hex_byte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", c);
  return buf;
}

// Reads an optional token-id key; like llama.cpp, an id outside the vocabulary
// (e.g. 0xFFFFFFFF written for "none") leaves the default in place.
void read_id(const gguf::File& f, const char* key, int n, int32_t* id) {
  const gguf::Value* v = f.find(key);
  if (!v) return;
  if (!v->is_integer()) throw Error(f.path() + ": metadata key " + key + " must be an integer token id");
  int64_t x;
  if (v->type == gguf::ValueType::U64 && v->u > static_cast<uint64_t>(INT64_MAX)) return;
  x = v->as_i64(key);
  if (x >= 0 && x < n) *id = static_cast<int32_t>(x);
}

struct Fragment {
  int32_t token;  // -1: raw text [off, off+len)
  size_t off, len;
};

// Splits text on special-token strings, longest token first (llama.cpp's
// tokenizer_st_partition, without the per-model lstrip/rstrip attributes).
std::vector<Fragment> partition(const Tokenizer::Impl& m, std::string_view text, bool parse_special) {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : m.special_ids) {
    if (!parse_special && (m.attr[id] & (kAttrControl | kAttrUnknown))) continue;
    const std::string& s = m.text[id];
    if (text.find(s) == std::string_view::npos) continue;
    next.clear();
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      size_t off = fr.off;
      const size_t end = fr.off + fr.len;
      const std::string_view window = text.substr(0, end);
      while (off < end) {
        const size_t p = window.find(s, off);
        if (p == std::string_view::npos) break;
        if (p > off) next.push_back({-1, off, p - off});
        next.push_back({id, p, s.size()});
        off = p + s.size();
      }
      if (off < end) next.push_back({-1, off, end - off});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace

void TokenIndex::build(const std::vector<std::string>& texts) {
  texts_ = &texts;
  size_t cap = 16;
  while (cap < texts.size() * 2) cap <<= 1;
  slots_.assign(cap, Slot{0, -1});
  mask_ = cap - 1;
  for (size_t id = 0; id < texts.size(); ++id) {
    const std::string_view s = texts[id];
    const uint64_t h = std::hash<std::string_view>{}(s);
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& sl = slots_[i];
      if (sl.id < 0 || (sl.tag == tag && texts[sl.id] == s)) {
        sl = Slot{tag, static_cast<int32_t>(id)};  // a later duplicate replaces the earlier id
        break;
      }
    }
  }
}

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& f) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  Impl& m = *t->impl_;
  const std::string& path = f.path();

  auto model = f.get_string(kKeyModel);
  if (!model) throw Error(path + ": missing metadata key " + kKeyModel);
  m.model = *model;
  if (m.model == "llama") {
    m.spm = true;
  } else if (m.model != "gpt2") {
    throw Error(path + ": " + kKeyModel + " = '" + m.model + "' is not supported (expected 'llama' or 'gpt2')");
  }
  m.pre = f.get_string(kKeyPre).value_or("");

  const gguf::Value* toks = f.find(kKeyTokens);
  if (!toks) throw Error(path + ": missing metadata key " + kKeyTokens);
  const std::vector<std::string_view> strs = toks->as_strings(kKeyTokens);
  if (strs.empty()) throw Error(path + ": " + kKeyTokens + " is empty");
  if (strs.size() > static_cast<size_t>(INT32_MAX)) throw Error(path + ": " + kKeyTokens + " has too many entries");
  const int n = static_cast<int>(strs.size());
  m.text.reserve(n);
  for (int i = 0; i < n; ++i) {
    if (strs[i].empty()) {
      m.text.push_back("[EMPTY_" + std::to_string(i) + "]");  // as llama.cpp
    } else {
      m.text.emplace_back(strs[i]);
    }
  }
  m.token_to_id.build(m.text);

  m.score.assign(n, 0.0f);
  if (const gguf::Value* v = f.find(kKeyScores)) {
    std::vector<float> s = v->as_f32s(kKeyScores);
    if (s.size() < static_cast<size_t>(n))
      throw Error(path + ": " + kKeyScores + " has " + std::to_string(s.size()) + " entries, fewer than the " +
                  std::to_string(n) + " tokens");
    std::copy_n(s.begin(), n, m.score.begin());
  }
  m.attr.assign(n, kAttrNormal);
  if (const gguf::Value* v = f.find(kKeyTypes)) {
    std::vector<int64_t> ty = v->as_i64s(kKeyTypes);
    if (ty.size() < static_cast<size_t>(n))
      throw Error(path + ": " + kKeyTypes + " has " + std::to_string(ty.size()) + " entries, fewer than the " +
                  std::to_string(n) + " tokens");
    for (int i = 0; i < n; ++i) {
      switch (ty[i]) {
        case 1: m.attr[i] = kAttrNormal; break;
        case 2: m.attr[i] = kAttrUnknown; break;
        case 3: m.attr[i] = kAttrControl; break;
        case 4: m.attr[i] = kAttrUserDefined; break;
        case 5: m.attr[i] = kAttrUnused; break;
        case 6: m.attr[i] = kAttrByte; break;
        default: m.attr[i] = kAttrUndefined; break;
      }
    }
  }

  // llama.cpp's per-type defaults, then the metadata overrides.
  if (m.spm) {
    m.bos = 1, m.eos = 2, m.unk = 0;
    m.add_bos = true;
    m.add_space_prefix = true;
  } else {
    m.bos = 11, m.eos = 11, m.unk = -1;
    m.load_bpe(f);  // pre-tokenizer (may set add_bos / ignore_merges) and merges
  }
  if (m.bos >= n) m.bos = -1;
  if (m.eos >= n) m.eos = -1;
  if (m.unk >= n) m.unk = -1;
  if (auto v = f.get_bool("tokenizer.ggml.add_space_prefix")) m.add_space_prefix = *v;
  read_id(f, "tokenizer.ggml.bos_token_id", n, &m.bos);
  read_id(f, "tokenizer.ggml.eos_token_id", n, &m.eos);
  read_id(f, "tokenizer.ggml.eot_token_id", n, &m.eot);
  read_id(f, "tokenizer.ggml.eom_token_id", n, &m.eom);
  read_id(f, "tokenizer.ggml.unknown_token_id", n, &m.unk);
  if (auto v = f.get_bool("tokenizer.ggml.add_bos_token")) m.add_bos = *v;
  if (auto v = f.get_bool("tokenizer.ggml.add_eos_token")) m.add_eos = *v;

  if (m.spm) {
    for (int b = 0; b < 256; ++b) {
      int32_t id = m.find_token(hex_byte(static_cast<unsigned char>(b)));
      if (id < 0) id = m.find_token(std::string(1, static_cast<char>(b)));
      m.spm_byte_token[b] = id;
    }
  }

  m.load_special(f);

  m.piece.resize(n);
  for (int i = 0; i < n; ++i) m.piece[i] = m.make_piece(i);

  if (auto tmpl = f.get_string("tokenizer.chat_template")) {
    if (tmpl->find("<|im_start|>") != std::string::npos) {
      m.chat = ChatFormat::ChatML;
    } else if (tmpl->find("<|start_header_id|>") != std::string::npos) {
      m.chat = ChatFormat::Llama3;
    }
  }
  return t;
}

// End-of-generation set and CONTROL promotion, following llama.cpp's vocab
// loader (text-based detection of end-of-turn and FIM tokens).
void Tokenizer::Impl::load_special(const gguf::File& f) {
  const int n = n_vocab();
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;
  read_id(f, "tokenizer.ggml.fim_pre_token_id", n, &fim_pre);
  read_id(f, "tokenizer.ggml.fim_suf_token_id", n, &fim_suf);
  read_id(f, "tokenizer.ggml.fim_mid_token_id", n, &fim_mid);
  read_id(f, "tokenizer.ggml.fim_pad_token_id", n, &fim_pad);
  read_id(f, "tokenizer.ggml.fim_rep_token_id", n, &fim_rep);
  read_id(f, "tokenizer.ggml.fim_sep_token_id", n, &fim_sep);

  // The lowest id whose text is one of `names` (llama.cpp takes the first in
  // hash order; ids make it deterministic). Promoted to CONTROL.
  auto detect = [&](int32_t* id, std::initializer_list<const char*> names) {
    if (*id >= 0) return;
    for (const char* s : names) {
      int32_t t = find_token(s);
      if (t >= 0 && (*id < 0 || t < *id)) *id = t;
    }
    if (*id >= 0) attr[*id] |= kAttrControl;
  };
  detect(&eot, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
                "_<EOT>", "[EOT]", "<end_of_utterance>"});
  detect(&eom, {"<|eom_id|>"});
  detect(&fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "<|code_prefix|>", "<|prefix|>"});
  detect(&fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>", "<|code_suffix|>", "<|suffix|>"});
  detect(&fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>", "<|code_middle|>", "<|middle|>"});
  detect(&fim_pad, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
  detect(&fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
  detect(&fim_sep, {"<|file_sep|>"});

  eog.assign(n, 0);
  for (int32_t id : {fim_pad, fim_rep, fim_sep, eos, eot, eom})
    if (id >= 0) eog[id] = 1;
  static const char* const kEogText[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
      "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
      "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>"};
  for (const char* s : kEogText) {
    const int32_t id = find_token(s);
    if (id < 0) continue;
    eog[id] = 1;
    attr[id] |= kAttrControl;
  }
  // gpt-oss: these are always rendered.
  for (const char* s : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
    const int32_t id = find_token(s);
    if (id >= 0) attr[id] = kAttrUserDefined;
  }
  // o200k_harmony / solar-open: "<|end|>" is not EOG when the call/return pair exists.
  auto is_eog_text = [&](const char* s) {
    const int32_t id = find_token(s);
    return id >= 0 && eog[id];
  };
  const int32_t end_id = find_token("<|end|>");
  if (end_id >= 0 && eog[end_id] &&
      ((is_eog_text("<|return|>") && (is_eog_text("<|call|>") || is_eog_text("<|calls|>"))) ||
       ((is_eog_text("<|call|>") || is_eog_text("<|calls|>")) && is_eog_text("<|flush|>")))) {
    eog[end_id] = 0;
    attr[end_id] = kAttrUserDefined;
  }
  // gemma4: "</s>" is text when "<|tool_response>" is the tool-turn marker.
  const int32_t s_id = find_token("</s>");
  if (s_id >= 0 && eog[s_id] && is_eog_text("<|tool_response>")) {
    eog[s_id] = 0;
    attr[s_id] = kAttrNormal;
  }

  for (int32_t id = 0; id < n; ++id)
    if (attr[id] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) special_ids.push_back(id);
  std::stable_sort(special_ids.begin(), special_ids.end(),
                   [&](int32_t a, int32_t b) { return text[a].size() > text[b].size(); });
}

std::string Tokenizer::Impl::make_piece(int32_t id) const {
  const uint32_t a = attr[id];
  const std::string& s = text[id];
  if (a & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return s;
  if (a & kAttrNormal) {
    std::string out;
    if (spm) {
      out.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (s.compare(i, 3, "\xE2\x96\x81") == 0) {
          out += ' ';
          i += 2;
        } else {
          out += s[i];
        }
      }
      return out;
    }
    // GPT-2 byte-unicode back to bytes; a character that is no byte's image
    // (not produced by converters) is kept as its UTF-8.
    const auto& bm = utf8::gpt2_bytes();
    size_t i = 0;
    while (i < s.size()) {
      size_t len;
      uint32_t cp = 0;
      if (utf8::next(s, i, &len, &cp) == utf8::Step::Ok && cp < bm.cp_to_byte.size() && bm.cp_to_byte[cp] >= 0) {
        out += static_cast<char>(bm.cp_to_byte[cp]);
      } else {
        out.append(s, i, len);
      }
      i += len;
    }
    return out;
  }
  if (a & kAttrByte) {
    // "<0xNN>"
    if (s.size() == 6 && s.compare(0, 3, "<0x") == 0 && s[5] == '>') {
      unsigned v = 0;
      if (std::sscanf(s.c_str() + 3, "%2x", &v) == 1) return std::string(1, static_cast<char>(v));
    }
    return s;
  }
  return {};  // UNUSED / UNDEFINED render as nothing (llama.cpp)
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& m = *impl_;
  if (size_t bad = utf8::first_invalid(text); bad != std::string_view::npos) {
    throw Error("tokenize: invalid UTF-8 at byte offset " + std::to_string(bad) + " of the input text");
  }
  const std::vector<Fragment> frags = partition(m, text, parse_special);
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && m.add_bos) {
    if (m.bos < 0) throw Error("tokenize: the model asks for BOS but has no valid bos_token_id");
    out.push_back(m.bos);
  }
  bool prev_special = true;  // SPM: a dummy space starts the text and follows each special token
  for (const Fragment& fr : frags) {
    if (fr.token >= 0) {
      out.push_back(fr.token);
      prev_special = true;
      continue;
    }
    const std::string_view raw = text.substr(fr.off, fr.len);
    if (m.spm) {
      m.spm_tokenize(raw, m.add_space_prefix && prev_special, out);
    } else {
      m.bpe_tokenize(raw, out);
    }
    prev_special = false;
  }
  if (add_special && m.add_eos) {
    if (m.eos < 0) throw Error("tokenize: the model asks for EOS but has no valid eos_token_id");
    out.push_back(m.eos);
  }
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= impl_->n_vocab())
    throw Error("detokenize: token id " + std::to_string(id) + " is out of range [0, " +
                std::to_string(impl_->n_vocab()) + ")");
  return impl_->piece[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= impl_->n_vocab()) (void)token_bytes(id);  // throws
    out += impl_->piece[id];
  }
  return out;
}

int Tokenizer::n_vocab() const { return impl_->n_vocab(); }
int32_t Tokenizer::bos() const { return impl_->bos; }
int32_t Tokenizer::eos() const { return impl_->eos; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::add_eos() const { return impl_->add_eos; }
bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && id < impl_->n_vocab() && impl_->eog[id]; }
bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < impl_->n_vocab() && (impl_->attr[id] & kAttrControl);
}
bool Tokenizer::is_normal(int32_t id) const {
  return id >= 0 && id < impl_->n_vocab() && (impl_->attr[id] & (kAttrNormal | kAttrByte));
}
const std::string& Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= impl_->n_vocab()) (void)token_bytes(id);  // throws
  return impl_->text[id];
}
const std::string& Tokenizer::model_type() const { return impl_->model; }
const std::string& Tokenizer::pre_type() const { return impl_->pre; }
ChatFormat Tokenizer::chat_format() const { return impl_->chat; }

std::string Tokenizer::format_chat(std::string_view user_message, std::string_view system) const {
  const ChatTurn turn{"user", std::string(user_message)};
  return format_chat(std::span<const ChatTurn>(&turn, 1), system);
}

std::string Tokenizer::format_chat(std::span<const ChatTurn> turns, std::string_view system) const {
  std::string out;
  switch (impl_->chat) {
    case ChatFormat::ChatML:
      if (!system.empty()) {
        out += "<|im_start|>system\n";
        out += system;
        out += "<|im_end|>\n";
      }
      for (const ChatTurn& t : turns) {
        out += "<|im_start|>" + t.role + "\n";
        out += t.text;
        out += "<|im_end|>\n";
      }
      out += "<|im_start|>assistant\n";
      break;
    case ChatFormat::Llama3:
      if (!system.empty()) {
        out += "<|start_header_id|>system<|end_header_id|>\n\n";
        out += system;
        out += "<|eot_id|>";
      }
      for (const ChatTurn& t : turns) {
        out += "<|start_header_id|>" + t.role + "<|end_header_id|>\n\n";
        out += t.text;
        out += "<|eot_id|>";
      }
      out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case ChatFormat::None:
      if (!system.empty()) {
        out += system;
        out += "\n\n";
      }
      for (size_t i = 0; i < turns.size(); ++i) {
        if (i) out += "\n\n";
        out += turns[i].text;
      }
      break;
  }
  return out;
}

bool vocab_compatible(const Tokenizer& a, const Tokenizer& b, std::string* why) {
  auto fail = [&](const std::string& msg) {
    if (why) *why = msg;
    return false;
  };
  if (a.model_type() != b.model_type())
    return fail("tokenizer types differ: '" + a.model_type() + "' vs '" + b.model_type() + "'");
  const int n = std::min(a.n_vocab(), b.n_vocab());
  for (int32_t id = 0; id < n; ++id) {
    const bool na = a.is_normal(id), nb = b.is_normal(id);
    if (!na && !nb) continue;
    if (na != nb || a.token_text(id) != b.token_text(id)) {
      return fail("token " + std::to_string(id) + " differs: '" + a.token_text(id) + "'" +
                  (na ? "" : " (added/control)") + " vs '" + b.token_text(id) + "'" + (nb ? "" : " (added/control)"));
    }
  }
  for (const Tokenizer* t : {&a, &b}) {
    for (int32_t id = n; id < t->n_vocab(); ++id) {
      if (t->is_normal(id))
        return fail("token " + std::to_string(id) + " '" + t->token_text(id) +
                    "' is a normal token present in only one vocabulary");
    }
  }
  if (a.pre_type() != b.pre_type())
    return fail("pre-tokenizers differ: '" + a.pre_type() + "' vs '" + b.pre_type() + "'");
  return true;
}

}  // namespace specsteer
