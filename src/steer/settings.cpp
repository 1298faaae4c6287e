#include "steer/settings.h"

#include <cmath>
#include <string>

#include "common/error.h"

namespace specsteer::steer {

namespace {
constexpr std::string_view kNames[] = {"llm", "slm", "slm+", "sd", "lightcosteer", "costeer", "specsteer", "llm+"};
}

std::string_view method_name(Method m) {
  const auto i = static_cast<size_t>(m);
  return i < std::size(kNames) ? kNames[i] : std::string_view("?");
}

Method parse_method(std::string_view name) {
  for (size_t i = 0; i < std::size(kNames); ++i)
    if (kNames[i] == name) return static_cast<Method>(i);
  throw Error("unknown method '" + std::string(name) +
              "' (expected llm, slm, slm+, llm+, sd, lightcosteer, costeer or specsteer)");
}

bool keeps_profile_on_device(Method m) { return m != Method::LlmPlus && m != Method::Sd; }

std::string_view privacy_note(Method m) {
  if (m == Method::LlmPlus) return "the retrieved profile goes to the cloud in the prompt";
  if (m == Method::Sd) return "the drafter's probabilities (computed on the profile) go to the cloud";
  return "";
}

std::string_view candidates_name(SteerCandidates c) {
  return c == SteerCandidates::Contrast ? "contrast" : c == SteerCandidates::Plausible ? "plausible" : "?";
}

SteerCandidates parse_candidates(std::string_view name) {
  if (name == "contrast") return SteerCandidates::Contrast;
  if (name == "plausible") return SteerCandidates::Plausible;
  throw Error("unknown steering candidate rule '" + std::string(name) + "' (expected contrast or plausible)");
}

bool uses_cloud(Method m) {
  return m == Method::Sd || m == Method::LightCoSteer || m == Method::CoSteer || m == Method::SpecSteer;
}

bool runs_across_vocabularies(Method m) { return !uses_cloud(m) || m == Method::SpecSteer; }

void validate(const Settings& s) {
  auto bad = [](const std::string& field, const std::string& why) { throw Error("settings: " + field + " " + why); };
  if (static_cast<size_t>(s.method) >= std::size(kNames)) bad("method", "is not a known method");
  // One rule set for every entry point (generate, eval, cloud, edge serve):
  // Eq. 7 divides by lambda, Eq. 8 steers toward the LLM only for beta >= 0,
  // and a generation of no tokens is a mistake, not a request.
  if (!std::isfinite(s.lambda) || s.lambda <= 0) bad("lambda", "must be a finite number > 0");
  if (!std::isfinite(s.beta) || s.beta < 0) bad("beta", "must be a finite number >= 0");
  if (s.draft < 1 || s.draft > 256) bad("draft (K)", "must be in [1, 256], got " + std::to_string(s.draft));
  if (s.draft_min < 0 || s.draft_min > s.draft)
    bad("draft_min", "must be in [0, draft (" + std::to_string(s.draft) + ")], got " + std::to_string(s.draft_min));
  if (!std::isfinite(s.draft_p_min) || s.draft_p_min < 0 || s.draft_p_min > 1)
    bad("draft_p_min", "must be in [0, 1], got " + std::to_string(s.draft_p_min));
  if (s.top_k < 1) bad("topk", "must be >= 1, got " + std::to_string(s.top_k));
  if (s.steer_candidates != SteerCandidates::Contrast && s.steer_candidates != SteerCandidates::Plausible)
    bad("steer_candidates", "is not a known rule (contrast or plausible)");
  if (!std::isfinite(s.plausibility) || s.plausibility < 0 || s.plausibility > 1)
    bad("plausibility (gamma)", "must be in [0, 1], got " + std::to_string(s.plausibility));
  if (s.max_new < 1) bad("max_new (-n)", "must be >= 1, got " + std::to_string(s.max_new));
  sampling::validate(s.sampler);
  sampling::validate(s.repeat);
  const auto& c = s.costeer;
  if (c.iterations < 1 || c.iterations > 10000) bad("costeer.iterations", "must be in [1, 10000]");
  if (!std::isfinite(c.a) || !std::isfinite(c.b)) bad("costeer.a/b", "must be finite");
  if (!std::isfinite(c.L) || c.L <= 0) bad("costeer.L", "must be > 0");
  if (!std::isfinite(c.eta) || c.eta <= 0) bad("costeer.eta", "must be > 0");
}

}  // namespace specsteer::steer
