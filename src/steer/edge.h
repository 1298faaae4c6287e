#pragma once
// The edge role (SLM+ on the personalized prompt) and the local baselines.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "steer/logit_source.h"
#include "steer/messages.h"
#include "steer/schedule.h"
#include "steer/settings.h"
#include "steer/transport.h"

namespace specsteer::steer {

using EogFn = std::function<bool(int32_t)>;

struct RunResult {
  std::vector<int32_t> tokens;  // generated ids, EOG excluded
  std::string stop_reason;      // "eog", "length", "cancelled" (ProgressFn) or "cloud_error" (CloudFailure::Fail)
  Counters counters;
  // Set when the transport failed (TransportError): tokens [0, n) came from
  // the edge-cloud protocol, the rest (fallback) from SLM+ alone.
  std::optional<uint64_t> cloud_failed_at;
  bool cloud_failed_at_open = false;  // the failure came before SessionAccept (unreachable, refused)
  std::string cloud_error;
  // Every forward pass of the run, round by round (replay). Cloud passes are
  // derived from the protocol (what the cloud must have evaluated for each
  // message), so a remote cloud's schedule is known too.
  Schedule schedule;
};

// Called after each verdict once both sides agree: `edge_cache` is the
// personalized prompt + the agreed generated prefix as the edge cache holds
// it (the cache may hold more after it: the next block, drafted ahead) and
// `next` its next-token row (the recovery/bonus token, if any, is not yet
// appended). Tests use it to compare against a fresh evaluation (rollback
// check).
using RoundObserver =
    std::function<void(std::span<const int32_t> edge_cache, std::span<const float> next, const Verdict& v)>;

// Sees the decided tokens as a run goes (streaming): called before each
// round or step with every token decided so far (they are final: later
// rounds only append). Returning false stops the run after the tokens
// decided so far, with stop_reason "cancelled" (the cloud session is closed).
using ProgressFn = std::function<bool(std::span<const int32_t> decided)>;

// Runs sd / specsteer / lightcosteer / costeer: drafts or steps on
// `slm_plus` (which receives `personalized`), talks to the cloud only
// through `transport`. `open` carries x, model identities and settings.
// When the transport fails (TransportError) the tokens so far are kept; a
// resumable failure on a transport that can reopen opens a new session with
// them as its resume point (up to on_failure.retries times: counters.resumed),
// and otherwise, as on_failure.then says (transport.h), SLM+ decodes the rest
// alone or the run stops with stop_reason "cloud_error". `is_eog` is extended with the
// EOG ids the cloud announces in SessionAccept, and the schedule's cloud
// prompts are the x lengths it reports there.
RunResult run_edge(LogitSource& slm_plus, std::span<const int32_t> personalized, Transport& transport,
                   const SessionOpen& open, const EogFn& is_eog, const RoundObserver& observer = {},
                   CloudFailurePolicy on_failure = {}, const ProgressFn& progress = {});

// llm / slm / slm+: plain autoregressive decoding of `prompt` on one source.
RunResult run_local(LogitSource& source, std::span<const int32_t> prompt, const Settings& s, const EogFn& is_eog,
                    const ProgressFn& progress = {});

}  // namespace specsteer::steer
