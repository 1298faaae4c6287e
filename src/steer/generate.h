#pragma once
// Library entry point: one generation with any method, edge and cloud in one
// process (talking through the in-process transport, so bytes are real), or
// the edge here and the cloud behind GenerateRequest::cloud. Either way the
// edge sends x as text and the cloud tokenizes it (protocol version 2 and
// later).
// The eval harness and the CLI both call generate().
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "steer/byte_level.h"
#include "steer/logit_source.h"
#include "steer/schedule.h"
#include "steer/settings.h"
#include "steer/transport.h"
#include "tokenizer/tokenizer.h"

namespace specsteer::steer {

struct Models {
  std::shared_ptr<const Model> llm, slm;  // llm is null on an edge that holds only its own model
  std::shared_ptr<const Tokenizer> llm_tok, slm_tok;
  // The vocabularies differ (load sets it, and builds `bytes`, the cloud's
  // tables for the pair, once); pair_through_bytes() sets it on a
  // same-vocabulary pair to run the cross-tokenizer path there (in-process
  // cloud only), for comparison with the token path.
  bool byte_level = false;
  std::string byte_level_why;  // how they differ (vocab_compatible's reason)
  std::shared_ptr<const BytePair> bytes;
  void pair_through_bytes();
  // Loads both models and their tokenizers. Pairs whose normal-token
  // vocabularies differ (vocab_compatible) are byte-level pairs: specsteer
  // pairs them through bytes (byte_level.h), the methods that need one
  // vocabulary (sd, lightcosteer, costeer) are refused.
  static Models load(const std::string& llm_path, const std::string& slm_path, const LoadOptions& opts = {});
  // The edge's small model alone: enough for slm, slm+ and every cloud
  // method against a remote cloud (which tokenizes x for its own models).
  static Models load_edge(const std::string& slm_path, const LoadOptions& opts = {});
};

struct GenerateRequest {
  std::string x;             // non-private prompt: the only text the cloud ever sees (with `history`)
  // Private context + the conversation's first user message (x itself when
  // there is no history): only the edge's SLM+ sees it. It stands for that
  // turn in SLM+'s prompt, so SLM+ reads the whole conversation too.
  std::string personalized;
  // A conversation's earlier turns before x, oldest first: user, assistant,
  // user, ..., assistant. Non-private: they go to the cloud as x does, so the
  // caller decides which turns may leave the device (edge serve: PRIVACY.md).
  std::vector<ChatTurn> history;
  // Indices of history turns the cloud gets empty (a reply the device wrote
  // alone, which may carry profile words): SLM+ still reads them whole; the
  // models without private context (the cloud's, slm, llm) read them empty.
  std::vector<size_t> withhold;
  Settings settings;
  bool chat = true;  // wrap prompts in each model's chat format when it has one
  std::string system;  // the chat's system text (--system; non-private: the cloud sees it)
  // Cloud methods: the link to a remote cloud (e.g. transport::GrpcTransport),
  // used for this one generation; nullptr runs the cloud in this process.
  Transport* cloud = nullptr;
  CloudFailure on_cloud_failure = CloudFailure::FallbackAfterOpen;
  // Sessions reopened with the decided tokens as a resume point after the
  // cloud fails (a transport that can reopen: the network one), before
  // on_cloud_failure applies (--cloud-retries).
  int cloud_retries = 2;
  // Streaming: called on this thread with each decided token as soon as it is
  // final, and the text it completes (valid UTF-8; empty while a multi-byte
  // character is incomplete or, with stop strings, held back). The pieces
  // concatenate to GenerationResult::text (a last call with id -1 passes
  // what was held back at the end).
  std::function<void(int32_t id, std::string_view piece)> on_token;
  // Set from any thread to stop after the tokens decided so far (checked
  // before every round or step): stop_reason "cancelled".
  const std::atomic<bool>* cancel = nullptr;
  // Stop strings (-r/--reverse-prompt): the generation stops at the round
  // after one appears and the text ends before it (stop_reason "stop";
  // `tokens` keeps every decided id). While streaming, bytes that could
  // begin a stop string are held back until they cannot.
  std::vector<std::string> stop;
  // LoRA adapters of the edge's SLM+ (loaded for models.slm): private like the
  // profile, they never reach the cloud, whose SLM- stays the base model.
  std::vector<LoraRef> edge_lora = {};
  // A prefix cache for the models run here (model/prefix_cache.h): the
  // edge's SLM+ (and the local baselines) start from the longest prompt
  // prefix kept in the scope, and their positions are kept there after.
  PrefixUse edge_cache;
  // Sent in SessionOpen: opaque names under which the cloud may reuse its
  // own cache for this user / this conversation ("" = none).
  std::string cache_user, cache_conversation;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids (EOG excluded)
  std::string text;             // decoded, valid UTF-8
  std::string stop_reason;      // "eog", "length", "stop" (a stop string), "cancelled" or "cloud_error"
  Counters counters;
  std::optional<uint64_t> cloud_failed_at;  // tokens from here on came from SLM+ alone (or none: Fail)
  bool cloud_failed_at_open = false;        // the cloud never opened the session (unreachable, refused)
  std::string cloud_error;
  Schedule schedule;  // every forward pass, round by round (steer/schedule.h)
};

// The token ids each role starts from: x for the cloud's LLM and SLM-, the
// personalized prompt for the edge's SLM+ (chat-formatted when asked).
// x_llm stays empty without an LLM.
struct PromptIds {
  std::vector<int32_t> x_llm, x_slm, personalized;
};
PromptIds prepare_prompts(const Models& models, const GenerateRequest& req);

// Optional observation of a cloud-method run (tests, `edge serve`'s wire
// log): every encoded message that crossed the transport, in order, for the
// in-process cloud and the network alike. uplink[i] and downlink[i] are one
// exchange; an exchange that failed has an empty reply.
struct Trace {
  std::vector<std::vector<uint8_t>> uplink, downlink;
};

GenerationResult generate(const Models& models, const GenerateRequest& req, Trace* trace = nullptr);

}  // namespace specsteer::steer
