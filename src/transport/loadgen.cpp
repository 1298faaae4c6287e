#include "transport/loadgen.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/timer.h"

namespace specsteer::transport {

LoadResult run_load(const steer::Models& models, const steer::GenerateRequest& request, const LoadOptions& opts) {
  if (opts.concurrency < 1) throw Error("--concurrency must be >= 1");
  if (opts.sessions < 1) throw Error("--sessions must be >= 1");
  if (!steer::uses_cloud(request.settings.method))
    throw Error("load: method '" + std::string(steer::method_name(request.settings.method)) + "' does not use the cloud");
  LoadResult total;
  std::mutex mu;
  std::atomic<int> next{0};
  Stopwatch wall;
  auto worker = [&] {
    for (int i = next++; i < opts.sessions; i = next++) {
      GrpcTransport link(opts.client);
      steer::GenerateRequest req = request;
      req.settings.seed += static_cast<uint64_t>(i);
      req.cloud = &link;
      req.on_cloud_failure = steer::CloudFailure::Fail;
      steer::GenerationResult r;
      std::string error;
      try {
        r = steer::generate(models, req);
        error = r.cloud_error;
      } catch (const std::exception& e) {
        error = e.what();
      }
      const auto& c = r.counters;
      std::lock_guard<std::mutex> lock(mu);
      if (error.empty()) {
        ++total.ok;
      } else {
        ++total.failed;
        if (total.first_error.empty()) total.first_error = error;
      }
      total.generated += c.n_generated;
      total.verified += c.n_drafted ? c.n_drafted : c.round_trips;
      total.round_trips += c.round_trips;
      total.bytes_up += c.bytes_up;
      total.bytes_down += c.bytes_down;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < opts.concurrency; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  total.wall_s = wall.seconds();
  return total;
}

}  // namespace specsteer::transport
