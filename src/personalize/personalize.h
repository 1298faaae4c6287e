#pragma once
// The device's personalization of one request: the user's profile entries
// (BM25 top-k, paper table 13 prompt) and the user's LoRA adapters of the
// SLM+ (paper appendix A.2), both from the private profile store. Shared by
// `generate`, `edge serve` and the C API so they personalize alike.
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "model/lora.h"
#include "profile/profile.h"
#include "steer/generate.h"

namespace specsteer::personalize {

// The store has no such user: callers turn it into their own "not found".
class UnknownUser : public Error {
 public:
  using Error::Error;
};

// The user's adapters (profile lora --set), loaded against the edge's SLM;
// an adapter file that is gone or does not fit the SLM is an Error naming
// the user's adapter and the file.
std::vector<LoraRef> user_adapters(const profile::Store& store, std::string_view user, const Model& slm);

// Sets req.x and req.personalized for `user` on `task` (k retrieved entries)
// and, with `user_adapters`, appends the user's adapters to req.edge_lora
// (after any already there). Throws UnknownUser when the store does not
// know the user. Returns the profile entries the prompt holds, in order.
std::vector<profile::Entry> apply(const profile::Store& store, std::string_view user, profile::Task task, int retrieve_k, std::string_view x,
           const Model& slm, steer::GenerateRequest& req, bool user_adapters = true);

}  // namespace specsteer::personalize
