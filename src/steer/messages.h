#pragma once
// Edge <-> cloud messages and their compact binary encoding.
//
// Wire format (version 3): one message per buffer, [type u8][fields...].
// Unsigned integers and token ids are LEB128 varints, floats are IEEE-754
// little-endian (f32 for logits/probabilities, f64 for settings), strings
// and vectors are a varint count then the elements. decode() rejects
// truncated input, overlong varints, counts larger than the bytes left or
// the limits, ids >= n_vocab, non-finite floats and trailing bytes, with an
// Error naming the message, the field and the byte offset.
//
// What crosses the wire is exactly these structs: the uplink carries the
// non-private prompt x (as text, or as each cloud model's token ids), model identities,
// settings and generated/drafted token ids (plus, for `sd` only, the
// drafter's probability of each drafted token). Nothing derived from the
// private context other than drafted ids is representable.
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "steer/settings.h"
#include "tokenizer/tokenizer.h"

namespace specsteer::steer {

// 2: x travels as text and the cloud tokenizes it (an edge needs only its own
// model); SessionAccept says what the edge cannot know without the LLM.
// 3: SessionAccept.byte_level (a Generalist of another vocabulary, paired
// through bytes: ids on the wire are the edge model's).
// 4: SessionOpen.resume (a session reopened after the cloud failed starts
// from x + the tokens already decided; the accept draws are keyed by position).
// 5: SessionOpen.history (x is the last user turn of a conversation whose
// earlier turns the cloud formats before it) and cache keys; SessionAccept
// says how many of x's positions each cloud model reused from its cache.
inline constexpr uint32_t kProtocolVersion = 5;

struct ModelIdentity {
  std::string name;  // general.name or file name, informational
  std::string arch;
  uint32_t n_vocab = 0;
  uint64_t fingerprint = 0;  // hash of architecture, tensor layout and vocabulary
  bool operator==(const ModelIdentity&) const = default;
};

struct IdValue {
  int32_t id = 0;
  float value = 0;
  bool operator==(const IdValue&) const = default;
};

struct SessionOpen {
  uint32_t version = kProtocolVersion;
  // The Generalist the edge expects; empty (n_vocab 0) accepts whichever LLM
  // the cloud serves, as an edge holding only its own model must.
  ModelIdentity llm;
  ModelIdentity slm;  // the edge's small model: the cloud's SLM- must be this one
  // x in one of two forms (exactly one is set):
  std::string x_text;  // as text: the cloud chat-formats (when `chat`) and tokenizes it for each of its models
  bool chat = true;
  std::string system;  // with x_text: the chat's system text (non-private; "" = none)
  std::vector<int32_t> x_llm;  // or as ids: x, chat-formatted and tokenized for the LLM
  std::vector<int32_t> x_slm;  // the same x for SLM- (often identical ids)
  Settings settings;
  // A resume point: the generated tokens (the edge model's ids) that a
  // previous session of this generation had agreed on before the cloud
  // failed. The cloud prefills x + these and continues at position
  // resume.size(); empty for a new generation. Only tokens the cloud already
  // verified travel: nothing new leaves the device.
  std::vector<int32_t> resume;
  // With x_text: the conversation's earlier turns (role "user" or
  // "assistant", oldest first); x is the user turn after them. Non-private
  // like x: the edge decides which turns may leave (PRIVACY.md).
  std::vector<ChatTurn> history = {};
  // Opaque names (at most 64 bytes; "" = none) under which the cloud may
  // share its prefix cache between sessions: one per user and one per
  // conversation of the edge (derived from a secret the edge keeps, so they
  // name nobody). The cloud's --cache-scope picks which one counts.
  std::string cache_user = {}, cache_conversation = {};
};
struct SessionAccept {
  uint64_t session = 0;
  uint32_t n_vocab = 0;  // the shared id range both sides work in
  ModelIdentity llm;     // the Generalist the cloud runs
  // Length of x as each cloud model's prompt: where the cloud's passes start
  // (the edge's per-round schedule of the cloud's forward passes).
  uint32_t x_llm_tokens = 0;
  uint32_t x_slm_tokens = 0;
  std::vector<int32_t> eog;  // end-of-generation ids of the cloud's models (< n_vocab)
  uint32_t n_ctx = 0;        // the session's context on the cloud: x + -n + K must fit
  uint32_t version = kProtocolVersion;  // the cloud's protocol version (encoded first)
  // The LLM's vocabulary differs from the edge model's: the cloud verifies
  // the drafts' bytes and values the edge model's ids in byte space
  // (steer/byte_level.h); every id on the wire is the edge model's, and
  // n_vocab is its vocabulary.
  bool byte_level = false;
  // Positions of x (+ resume) each cloud model copied from its prefix cache
  // instead of computing them.
  uint32_t x_llm_cached = 0;
  uint32_t x_slm_cached = 0;
};
struct DraftBlock {
  uint64_t session = 0;
  std::vector<int32_t> committed;  // tokens the edge already decided (recovery/bonus), appended untested
  std::vector<int32_t> drafts;     // to verify, in order
  std::vector<float> draft_probs;  // sd only: drafter probability q_t(y_t) per draft; else empty
};
struct Verdict {
  uint32_t n_accepted = 0;
  bool rejected = false;        // false: all drafts accepted
  std::vector<IdValue> steer;   // specsteer: top-k of h_LLM - beta*h_SLM- (rejected position, or K+1 with bonus)
  std::vector<IdValue> target;  // sd: LLM sampler distribution (id, prob) at the same position
};
struct StepRequest {  // lightcosteer / costeer: one exchange per token
  uint64_t session = 0;
  std::vector<int32_t> committed;  // tokens generated since the last step
};
struct StepReply {
  std::vector<IdValue> steer;        // lightcosteer: top-k of h_LLM - beta*h_SLM-
  std::vector<float> llm_logprobs;   // costeer: log_softmax(h_LLM), full vocabulary
  std::vector<float> slm_logprobs;   // costeer: log_softmax(h_SLM-), full vocabulary
};
struct Close {
  uint64_t session = 0;
};
struct CloseAck {
  uint64_t positions_llm = 0;  // forward positions the cloud ran (for FLOPs)
  uint64_t positions_slm = 0;
  uint64_t attention_llm = 0;  // sum of attended context lengths over those positions
  uint64_t attention_slm = 0;
  // The cloud's compute time for this session after the open, in microseconds
  // (per-round cost breakdown): LLM passes, SLM- passes, everything else
  // (ratio tests, steering vectors, rollbacks).
  uint64_t us_llm = 0;
  uint64_t us_slm = 0;
  uint64_t us_steer = 0;
};
struct ErrorReply {
  std::string message;
};

using Message = std::variant<SessionOpen, SessionAccept, DraftBlock, Verdict, StepRequest, StepReply, Close,
                             CloseAck, ErrorReply>;

const char* message_name(const Message& m);
// "protocol version mismatch: <who> speaks version N, this side version M ...".
std::string version_mismatch(const std::string& who, uint32_t version);

struct DecodeLimits {
  uint32_t n_vocab = 0;            // ids must be < n_vocab (0: < 2^31) and full vectors exactly this long
  uint64_t max_tokens = 1u << 20;  // per id list
  uint64_t max_vector = 1u << 24;  // per float/pair list
  uint64_t max_text = 1u << 22;    // bytes of SessionOpen.x_text (and of all its history turns together)
  uint64_t max_turns = 4096;       // SessionOpen.history turns
};

std::vector<uint8_t> encode(const Message& m);
Message decode(std::span<const uint8_t> bytes, const DecodeLimits& limits = {});

}  // namespace specsteer::steer
