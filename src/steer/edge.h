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
  std::string stop_reason;      // "eog", "length" or "cloud_error" (CloudFailure::Fail)
  Counters counters;
  // Set when the transport failed (TransportError): tokens [0, n) came from
  // the edge-cloud protocol, the rest (fallback) from SLM+ alone.
  std::optional<uint64_t> cloud_failed_at;
  std::string cloud_error;
  // Every forward pass of the run, round by round (replay). Cloud passes are
  // derived from the protocol (what the cloud must have evaluated for each
  // message), so a remote cloud's schedule is known too.
  Schedule schedule;
};

// Called after each verdict once both sides agree: the edge cache holds the
// personalized prompt + the agreed generated prefix and `next` is its
// next-token row (the recovery/bonus token, if any, is not yet appended).
// Tests use it to compare against a fresh evaluation (rollback check).
using RoundObserver = std::function<void(const LogitSource& slm_plus, std::span<const float> next, const Verdict& v)>;

// Runs sd / specsteer / lightcosteer / costeer: drafts or steps on
// `slm_plus` (which receives `personalized`), talks to the cloud only
// through `transport`. `open` carries x, model identities and settings.
// When the transport fails (TransportError) the tokens so far are kept and,
// with CloudFailure::Fallback, SLM+ decodes the rest alone.
RunResult run_edge(LogitSource& slm_plus, std::span<const int32_t> personalized, Transport& transport,
                   const SessionOpen& open, const EogFn& is_eog, const RoundObserver& observer = {},
                   CloudFailure on_failure = CloudFailure::Fallback);

// llm / slm / slm+: plain autoregressive decoding of `prompt` on one source.
RunResult run_local(LogitSource& source, std::span<const int32_t> prompt, const Settings& s, const EogFn& is_eog);

}  // namespace specsteer::steer
