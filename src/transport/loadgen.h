#pragma once
// Many edges against one cloud, for the transport benchmark: `concurrency`
// threads each run whole generations (steer::generate over a GrpcTransport)
// until `sessions` generations are done.
#include <cstdint>
#include <string>

#include "steer/generate.h"
#include "transport/client.h"

namespace specsteer::transport {

struct LoadOptions {
  ClientOptions client;
  int concurrency = 1;
  int sessions = 1;  // total generations; session i uses seed settings.seed + i
};

struct LoadResult {
  int ok = 0, failed = 0;  // failed: the cloud failed during the generation (fallback or error)
  double wall_s = 0;
  uint64_t generated = 0;   // tokens generated, all sessions
  uint64_t verified = 0;    // tokens the cloud scored: drafts (sd/specsteer) or steps (per-token methods)
  uint64_t round_trips = 0, bytes_up = 0, bytes_down = 0;
  std::string first_error;
  double sessions_per_s() const { return wall_s > 0 ? ok / wall_s : 0; }
  double generated_per_s() const { return wall_s > 0 ? static_cast<double>(generated) / wall_s : 0; }
  double verified_per_s() const { return wall_s > 0 ? static_cast<double>(verified) / wall_s : 0; }
};

LoadResult run_load(const steer::Models& models, const steer::GenerateRequest& request, const LoadOptions& opts);

}  // namespace specsteer::transport
