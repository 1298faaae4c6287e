#include "steer/messages.h"

#include <cmath>
#include <cstring>
#include <string>

#include "common/error.h"

namespace specsteer::steer {

namespace {

enum class Tag : uint8_t {
  SessionOpen = 1,
  SessionAccept = 2,
  DraftBlock = 3,
  Verdict = 4,
  StepRequest = 5,
  StepReply = 6,
  Close = 7,
  CloseAck = 8,
  ErrorReply = 9,
};

class Writer {
 public:
  void u8(uint8_t v) { out.push_back(v); }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<uint8_t>(v));
  }
  void f32(float v) {
    uint32_t b;
    std::memcpy(&b, &v, 4);
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(b >> (8 * i)));
  }
  void f64(double v) {
    uint64_t b;
    std::memcpy(&b, &v, 8);
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(b >> (8 * i)));
  }
  void str(const std::string& s) {
    varint(s.size());
    out.insert(out.end(), s.begin(), s.end());
  }
  void ids(const std::vector<int32_t>& v) {
    varint(v.size());
    for (int32_t id : v) varint(static_cast<uint32_t>(id));
  }
  void floats(const std::vector<float>& v) {
    varint(v.size());
    for (float x : v) f32(x);
  }
  void pairs(const std::vector<IdValue>& v) {
    varint(v.size());
    for (const auto& p : v) {
      varint(static_cast<uint32_t>(p.id));
      f32(p.value);
    }
  }
  void identity(const ModelIdentity& m) {
    str(m.name);
    str(m.arch);
    varint(m.n_vocab);
    varint(m.fingerprint);
  }
  std::vector<uint8_t> out;
};

class Reader {
 public:
  Reader(std::span<const uint8_t> b, const DecodeLimits& l) : b_(b), lim_(l) {}
  const char* msg = "message";

  [[noreturn]] void fail(const char* field, const std::string& why) const {
    throw Error(std::string("protocol: ") + msg + "." + field + " at byte offset " + std::to_string(pos_) + ": " +
                why);
  }
  size_t left() const { return b_.size() - pos_; }
  uint8_t u8(const char* field) {
    if (left() < 1) fail(field, "truncated (need 1 byte)");
    return b_[pos_++];
  }
  uint64_t varint(const char* field) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (left() < 1) fail(field, "truncated varint");
      const uint8_t byte = b_[pos_++];
      if (shift == 63 && byte > 1) fail(field, "varint overflows 64 bits");
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return v;
    }
    fail(field, "varint longer than 10 bytes");
  }
  uint32_t u32(const char* field) {
    const uint64_t v = varint(field);
    if (v > 0xffffffffull) fail(field, "value " + std::to_string(v) + " exceeds 32 bits");
    return static_cast<uint32_t>(v);
  }
  int32_t id(const char* field) {
    const size_t at = pos_;
    const uint64_t v = varint(field);
    const uint64_t limit = lim_.n_vocab ? lim_.n_vocab : 0x80000000ull;
    if (v >= limit) {
      pos_ = at;
      fail(field, "token id " + std::to_string(v) + " out of range (n_vocab " + std::to_string(limit) + ")");
    }
    return static_cast<int32_t>(v);
  }
  float f32(const char* field, bool finite = true) {
    if (left() < 4) fail(field, "truncated float");
    uint32_t bits = 0;
    for (int i = 0; i < 4; ++i) bits |= static_cast<uint32_t>(b_[pos_ + i]) << (8 * i);
    float v;
    std::memcpy(&v, &bits, 4);
    if (finite && !std::isfinite(v)) fail(field, "value is not finite");
    pos_ += 4;
    return v;
  }
  double f64(const char* field) {
    if (left() < 8) fail(field, "truncated double");
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits |= static_cast<uint64_t>(b_[pos_ + i]) << (8 * i);
    double v;
    std::memcpy(&v, &bits, 8);
    if (!std::isfinite(v)) fail(field, "value is not finite");
    pos_ += 8;
    return v;
  }
  bool flag(const char* field) {
    const uint8_t v = u8(field);
    if (v > 1) fail(field, "boolean must be 0 or 1, got " + std::to_string(v));
    return v == 1;
  }
  // A count whose elements take at least `min_bytes` each must fit in what is left.
  uint64_t count(const char* field, uint64_t max, size_t min_bytes) {
    const size_t at = pos_;
    const uint64_t n = varint(field);
    if (n > max || n > left() / min_bytes) {
      pos_ = at;
      fail(field, "count " + std::to_string(n) + " exceeds the limit or the bytes left");
    }
    return n;
  }
  std::string str(const char* field, uint64_t max = 4096) {
    const uint64_t n = count(field, max, 1);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  std::vector<int32_t> ids(const char* field) {
    const uint64_t n = count(field, lim_.max_tokens, 1);
    std::vector<int32_t> v(n);
    for (auto& x : v) x = id(field);
    return v;
  }
  std::vector<float> floats(const char* field, bool full_vocab) {
    const uint64_t n = count(field, lim_.max_vector, 4);
    if (full_vocab && n != 0 && lim_.n_vocab && n != lim_.n_vocab)
      fail(field, "vector has " + std::to_string(n) + " entries, expected n_vocab " + std::to_string(lim_.n_vocab));
    std::vector<float> v(n);
    for (auto& x : v) x = f32(field);
    return v;
  }
  std::vector<IdValue> pairs(const char* field) {
    const uint64_t n = count(field, lim_.max_vector, 5);
    std::vector<IdValue> v(n);
    for (auto& p : v) {
      p.id = id(field);
      p.value = f32(field);
    }
    return v;
  }
  ModelIdentity identity(const char* field) {
    ModelIdentity m;
    m.name = str(field);
    m.arch = str(field);
    m.n_vocab = u32(field);
    m.fingerprint = varint(field);
    return m;
  }
  void finish() {
    if (left() != 0) fail("end", std::to_string(left()) + " trailing bytes");
  }

 private:
  std::span<const uint8_t> b_;
  DecodeLimits lim_;
  size_t pos_ = 0;
};

void write_settings(Writer& w, const Settings& s) {
  w.u8(static_cast<uint8_t>(s.method));
  w.f64(s.lambda);
  w.f64(s.beta);
  w.varint(static_cast<uint32_t>(s.draft));
  w.varint(static_cast<uint32_t>(s.top_k));
  w.varint(static_cast<uint32_t>(s.max_new));
  w.varint(s.seed);
  w.f64(s.sampler.temperature);
  w.varint(static_cast<uint32_t>(s.sampler.top_k));
  w.f64(s.sampler.top_p);
  w.f64(s.sampler.min_p);
  w.u8(s.bonus ? 1 : 0);
  w.varint(static_cast<uint32_t>(s.costeer.iterations));
  w.f64(s.costeer.a);
  w.f64(s.costeer.b);
  w.f64(s.costeer.L);
  w.f64(s.costeer.eta);
  w.u8(static_cast<uint8_t>(s.steer_candidates));
  w.f64(s.plausibility);
}

int32_t small_int(Reader& r, const char* field) {
  const uint32_t v = r.u32(field);
  if (v > 0x7fffffffu) r.fail(field, "value too large");
  return static_cast<int32_t>(v);
}

Settings read_settings(Reader& r) {
  Settings s;
  const uint8_t m = r.u8("settings.method");
  if (m > static_cast<uint8_t>(Method::LlmPlus)) r.fail("settings.method", "unknown method " + std::to_string(m));
  s.method = static_cast<Method>(m);
  s.lambda = r.f64("settings.lambda");
  s.beta = r.f64("settings.beta");
  s.draft = small_int(r, "settings.draft");
  s.top_k = small_int(r, "settings.top_k");
  s.max_new = small_int(r, "settings.max_new");
  s.seed = r.varint("settings.seed");
  s.sampler.temperature = r.f64("settings.temperature");
  s.sampler.top_k = small_int(r, "settings.sampler_top_k");
  s.sampler.top_p = r.f64("settings.top_p");
  s.sampler.min_p = r.f64("settings.min_p");
  s.bonus = r.flag("settings.bonus");
  s.costeer.iterations = small_int(r, "settings.costeer_T");
  s.costeer.a = r.f64("settings.costeer_a");
  s.costeer.b = r.f64("settings.costeer_b");
  s.costeer.L = r.f64("settings.costeer_L");
  s.costeer.eta = r.f64("settings.costeer_eta");
  const uint8_t cand = r.u8("settings.steer_candidates");
  if (cand > static_cast<uint8_t>(SteerCandidates::Plausible))
    r.fail("settings.steer_candidates", "unknown candidate rule " + std::to_string(cand));
  s.steer_candidates = static_cast<SteerCandidates>(cand);
  s.plausibility = r.f64("settings.plausibility");
  try {
    validate(s);
  } catch (const Error& e) {
    r.fail("settings", e.what());
  }
  return s;
}

struct Encoder {
  Writer& w;
  void operator()(const SessionOpen& m) {
    w.u8(static_cast<uint8_t>(Tag::SessionOpen));
    w.varint(m.version);
    w.identity(m.llm);
    w.identity(m.slm);
    w.str(m.x_text);
    w.u8(m.chat ? 1 : 0);
    w.str(m.system);
    w.ids(m.x_llm);
    // x_slm is usually the same ids: one flag byte instead of a second copy.
    if (m.x_slm == m.x_llm) {
      w.u8(1);
    } else {
      w.u8(0);
      w.ids(m.x_slm);
    }
    write_settings(w, m.settings);
    w.ids(m.resume);
    w.varint(m.history.size());
    for (const ChatTurn& t : m.history) {
      w.str(t.role);
      w.str(t.text);
    }
    w.str(m.cache_user);
    w.str(m.cache_conversation);
  }
  void operator()(const SessionAccept& m) {
    w.u8(static_cast<uint8_t>(Tag::SessionAccept));
    w.varint(m.version);
    w.varint(m.session);
    w.varint(m.n_vocab);
    w.identity(m.llm);
    w.varint(m.x_llm_tokens);
    w.varint(m.x_slm_tokens);
    w.ids(m.eog);
    w.varint(m.n_ctx);
    w.u8(m.byte_level ? 1 : 0);
    w.varint(m.x_llm_cached);
    w.varint(m.x_slm_cached);
  }
  void operator()(const DraftBlock& m) {
    w.u8(static_cast<uint8_t>(Tag::DraftBlock));
    w.varint(m.session);
    w.ids(m.committed);
    w.ids(m.drafts);
    w.floats(m.draft_probs);
  }
  void operator()(const Verdict& m) {
    w.u8(static_cast<uint8_t>(Tag::Verdict));
    w.varint(m.n_accepted);
    w.u8(m.rejected ? 1 : 0);
    w.pairs(m.steer);
    w.pairs(m.target);
  }
  void operator()(const StepRequest& m) {
    w.u8(static_cast<uint8_t>(Tag::StepRequest));
    w.varint(m.session);
    w.ids(m.committed);
  }
  void operator()(const StepReply& m) {
    w.u8(static_cast<uint8_t>(Tag::StepReply));
    w.pairs(m.steer);
    w.floats(m.llm_logprobs);
    w.floats(m.slm_logprobs);
  }
  void operator()(const Close& m) {
    w.u8(static_cast<uint8_t>(Tag::Close));
    w.varint(m.session);
  }
  void operator()(const CloseAck& m) {
    w.u8(static_cast<uint8_t>(Tag::CloseAck));
    w.varint(m.positions_llm);
    w.varint(m.positions_slm);
    w.varint(m.attention_llm);
    w.varint(m.attention_slm);
    w.varint(m.us_llm);
    w.varint(m.us_slm);
    w.varint(m.us_steer);
  }
  void operator()(const ErrorReply& m) {
    w.u8(static_cast<uint8_t>(Tag::ErrorReply));
    w.str(m.message.size() > 4096 ? m.message.substr(0, 4096) : m.message);
  }
};

}  // namespace

std::string version_mismatch(const std::string& who, uint32_t version) {
  return "protocol version mismatch: " + who + " speaks version " + std::to_string(version) + ", this side version " +
         std::to_string(kProtocolVersion) + " (update the older of edge and cloud)";
}

const char* message_name(const Message& m) {
  static const char* names[] = {"SessionOpen", "SessionAccept", "DraftBlock", "Verdict",   "StepRequest",
                                "StepReply",   "Close",         "CloseAck",   "ErrorReply"};
  return names[m.index()];
}

std::vector<uint8_t> encode(const Message& m) {
  Writer w;
  std::visit(Encoder{w}, m);
  return std::move(w.out);
}

Message decode(std::span<const uint8_t> bytes, const DecodeLimits& limits) {
  Reader r(bytes, limits);
  const uint8_t tag = r.u8("type");
  Message out;
  switch (static_cast<Tag>(tag)) {
    case Tag::SessionOpen: {
      r.msg = "SessionOpen";
      SessionOpen m;
      m.version = r.u32("version");
      if (m.version != kProtocolVersion) r.fail("version", version_mismatch("the edge", m.version));
      m.llm = r.identity("llm");
      m.slm = r.identity("slm");
      m.x_text = r.str("x_text", limits.max_text);
      m.chat = r.flag("chat");
      m.system = r.str("system", limits.max_text);
      m.x_llm = r.ids("x_llm");
      m.x_slm = r.flag("x_slm_same") ? m.x_llm : r.ids("x_slm");
      if (m.x_text.empty() == m.x_llm.empty())
        r.fail("x_text", m.x_text.empty() ? "x is empty (neither text nor token ids)"
                                          : "x is given both as text and as token ids");
      m.settings = read_settings(r);
      m.resume = r.ids("resume");
      if (m.resume.size() > static_cast<size_t>(m.settings.max_new))
        r.fail("resume", std::to_string(m.resume.size()) + " decided tokens exceed max_new " +
                             std::to_string(m.settings.max_new));
      const uint64_t turns = r.count("history", limits.max_turns, 2);
      if (turns && m.x_text.empty()) r.fail("history", "needs x as text (ids already hold the prompt)");
      uint64_t text = m.x_text.size();
      for (uint64_t i = 0; i < turns; ++i) {
        ChatTurn t;
        t.role = r.str("history.role", 16);
        if (t.role != "user" && t.role != "assistant")
          r.fail("history.role", "turn " + std::to_string(i) + " has role '" + t.role + "' (user or assistant)");
        t.text = r.str("history.text", limits.max_text);
        text += t.text.size();
        if (text > limits.max_text)
          r.fail("history.text", "x and its history exceed " + std::to_string(limits.max_text) + " bytes");
        m.history.push_back(std::move(t));
      }
      m.cache_user = r.str("cache_user", 64);
      m.cache_conversation = r.str("cache_conversation", 64);
      out = std::move(m);
      break;
    }
    case Tag::SessionAccept: {
      r.msg = "SessionAccept";
      SessionAccept m;
      m.version = r.u32("version");
      if (m.version != kProtocolVersion) r.fail("version", version_mismatch("the cloud", m.version));
      m.session = r.varint("session");
      m.n_vocab = r.u32("n_vocab");
      if (m.n_vocab == 0 || m.n_vocab > 0x7fffffffu) r.fail("n_vocab", "must be in [1, 2^31)");
      m.llm = r.identity("llm");
      m.x_llm_tokens = r.u32("x_llm_tokens");
      m.x_slm_tokens = r.u32("x_slm_tokens");
      m.eog = r.ids("eog");
      m.n_ctx = r.u32("n_ctx");
      m.byte_level = r.flag("byte_level");
      m.x_llm_cached = r.u32("x_llm_cached");
      m.x_slm_cached = r.u32("x_slm_cached");
      if (m.x_llm_cached > m.x_llm_tokens || m.x_slm_cached > m.x_slm_tokens)
        r.fail("x_llm_cached", "more cached positions than x holds");
      out = std::move(m);
      break;
    }
    case Tag::DraftBlock: {
      r.msg = "DraftBlock";
      DraftBlock m;
      m.session = r.varint("session");
      m.committed = r.ids("committed");
      m.drafts = r.ids("drafts");
      m.draft_probs = r.floats("draft_probs", false);
      if (!m.draft_probs.empty() && m.draft_probs.size() != m.drafts.size())
        r.fail("draft_probs", "has " + std::to_string(m.draft_probs.size()) + " entries for " +
                                  std::to_string(m.drafts.size()) + " drafts");
      for (float q : m.draft_probs)
        if (!(q > 0.f && q <= 1.f)) r.fail("draft_probs", "probability outside (0, 1]");
      out = std::move(m);
      break;
    }
    case Tag::Verdict: {
      r.msg = "Verdict";
      Verdict m;
      m.n_accepted = r.u32("n_accepted");
      m.rejected = r.flag("rejected");
      m.steer = r.pairs("steer");
      m.target = r.pairs("target");
      for (const auto& p : m.target)
        if (!(p.value >= 0.f && p.value <= 1.f)) r.fail("target", "probability outside [0, 1]");
      out = std::move(m);
      break;
    }
    case Tag::StepRequest: {
      r.msg = "StepRequest";
      StepRequest m;
      m.session = r.varint("session");
      m.committed = r.ids("committed");
      out = std::move(m);
      break;
    }
    case Tag::StepReply: {
      r.msg = "StepReply";
      StepReply m;
      m.steer = r.pairs("steer");
      m.llm_logprobs = r.floats("llm_logprobs", true);
      m.slm_logprobs = r.floats("slm_logprobs", true);
      if (m.llm_logprobs.size() != m.slm_logprobs.size())
        r.fail("slm_logprobs", "length differs from llm_logprobs");
      out = std::move(m);
      break;
    }
    case Tag::Close: {
      r.msg = "Close";
      out = Close{r.varint("session")};
      break;
    }
    case Tag::CloseAck: {
      r.msg = "CloseAck";
      CloseAck m;
      m.positions_llm = r.varint("positions_llm");
      m.positions_slm = r.varint("positions_slm");
      m.attention_llm = r.varint("attention_llm");
      m.attention_slm = r.varint("attention_slm");
      m.us_llm = r.varint("us_llm");
      m.us_slm = r.varint("us_slm");
      m.us_steer = r.varint("us_steer");
      out = m;
      break;
    }
    case Tag::ErrorReply: {
      r.msg = "ErrorReply";
      out = ErrorReply{r.str("message")};
      break;
    }
    default:
      r.fail("type", "unknown message type " + std::to_string(tag));
  }
  r.finish();
  return out;
}

}  // namespace specsteer::steer
