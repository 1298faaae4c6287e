#include "transport/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "common/error.h"

namespace specsteer::transport {

namespace pm = prometheus;

struct CloudMetrics::Impl {
  std::shared_ptr<pm::Registry> reg = std::make_shared<pm::Registry>();
  std::unique_ptr<pm::Exposer> exposer;

  pm::Family<pm::Counter>& opened_f = pm::BuildCounter()
                                           .Name("specsteer_sessions_opened_total")
                                           .Help("Sessions admitted (resumed: reopened by an edge after a cloud failure)")
                                           .Register(*reg);
  pm::Counter& opened_new = opened_f.Add({{"kind", "new"}});
  pm::Counter& opened_resumed = opened_f.Add({{"kind", "resumed"}});
  pm::Counter& resumed = pm::BuildCounter()
                             .Name("specsteer_sessions_resumed_total")
                             .Help("Sessions opened with a resume point (the edge lost its previous session)")
                             .Register(*reg)
                             .Add({});
  pm::Family<pm::Counter>& refused_f = pm::BuildCounter()
                                            .Name("specsteer_sessions_refused_total")
                                            .Help("Streams refused before a session opened, by reason")
                                            .Register(*reg);
  pm::Family<pm::Counter>& ended_f =
      pm::BuildCounter().Name("specsteer_sessions_ended_total").Help("Sessions ended, by how").Register(*reg);
  pm::Gauge& active =
      pm::BuildGauge().Name("specsteer_sessions_active").Help("Sessions open now").Register(*reg).Add({});
  pm::Counter& blocks = pm::BuildCounter()
                            .Name("specsteer_blocks_verified_total")
                            .Help("Draft blocks verified (specsteer, sd)")
                            .Register(*reg)
                            .Add({});
  pm::Counter& steps = pm::BuildCounter()
                           .Name("specsteer_steps_total")
                           .Help("Per-token steps served (lightcosteer, costeer)")
                           .Register(*reg)
                           .Add({});
  pm::Counter& drafted = pm::BuildCounter()
                             .Name("specsteer_drafted_tokens_total")
                             .Help("Drafted tokens received for verification")
                             .Register(*reg)
                             .Add({});
  pm::Counter& accepted =
      pm::BuildCounter().Name("specsteer_accepted_tokens_total").Help("Drafted tokens accepted").Register(*reg).Add({});
  pm::Counter& rejections = pm::BuildCounter()
                                .Name("specsteer_rejections_total")
                                .Help("Blocks with a rejected draft (a steering vector sent)")
                                .Register(*reg)
                                .Add({});
  pm::Family<pm::Counter>& prefill_f = pm::BuildCounter()
                                            .Name("specsteer_prefill_tokens_total")
                                            .Help("Tokens prefilled when sessions opened (x, and resume points), per model")
                                            .Register(*reg);
  pm::Counter& prefill_llm = prefill_f.Add({{"model", "llm"}});
  pm::Counter& prefill_slm = prefill_f.Add({{"model", "slm"}});
  pm::Family<pm::Counter>& cached_f = pm::BuildCounter()
                                           .Name("specsteer_prefix_cache_hit_tokens_total")
                                           .Help("Prompt positions copied from the prefix cache instead of prefilled, per model")
                                           .Register(*reg);
  pm::Counter& cached_llm = cached_f.Add({{"model", "llm"}});
  pm::Counter& cached_slm = cached_f.Add({{"model", "slm"}});
  pm::Gauge& cache_bytes = pm::BuildGauge()
                               .Name("specsteer_prefix_cache_bytes")
                               .Help("KV bytes the prefix cache holds (at most --cache-ram)")
                               .Register(*reg)
                               .Add({});
  pm::Counter& resume_tokens = pm::BuildCounter()
                                   .Name("specsteer_resume_tokens_total")
                                   .Help("Decided tokens re-prefilled for resumed sessions")
                                   .Register(*reg)
                                   .Add({});
  pm::Family<pm::Histogram>& pass_f = pm::BuildHistogram()
                                           .Name("specsteer_shared_pass_requests")
                                           .Help("Sessions' requests served by one shared forward pass, per model")
                                           .Register(*reg);
  pm::Histogram& pass_llm = pass_f.Add({{"model", "llm"}}, pm::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64});
  pm::Histogram& pass_slm = pass_f.Add({{"model", "slm"}}, pm::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64});
  pm::Family<pm::Counter>& pass_rows_f = pm::BuildCounter()
                                              .Name("specsteer_shared_pass_rows_total")
                                              .Help("Token positions evaluated in shared passes, per model")
                                              .Register(*reg);
  pm::Counter& rows_llm = pass_rows_f.Add({{"model", "llm"}});
  pm::Counter& rows_slm = pass_rows_f.Add({{"model", "slm"}});
  pm::Histogram& exchange_s = pm::BuildHistogram()
                                  .Name("specsteer_exchange_seconds")
                                  .Help("Server time per request/reply exchange (open's prefill included)")
                                  .Register(*reg)
                                  .Add({}, pm::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                           0.25, 0.5, 1, 2.5, 5, 10, 30});
  pm::Family<pm::Counter>& bytes_f = pm::BuildCounter()
                                          .Name("specsteer_wire_bytes_total")
                                          .Help("Message bytes (protobuf + gRPC framing), by direction")
                                          .Register(*reg);
  pm::Counter& bytes_in = bytes_f.Add({{"direction", "in"}});
  pm::Counter& bytes_out = bytes_f.Add({{"direction", "out"}});
  pm::Gauge& kv_used = pm::BuildGauge()
                           .Name("specsteer_kv_bytes_reserved")
                           .Help("KV caches and logits rows reserved by open sessions")
                           .Register(*reg)
                           .Add({});
  pm::Gauge& kv_budget = pm::BuildGauge()
                             .Name("specsteer_kv_bytes_budget")
                             .Help("--memory-budget-mb in bytes (0: unlimited)")
                             .Register(*reg)
                             .Add({});
  pm::Gauge& serving = pm::BuildGauge()
                           .Name("specsteer_serving")
                           .Help("1 while new sessions are admitted (grpc.health.v1 SERVING), 0 while draining")
                           .Register(*reg)
                           .Add({});
  pm::Family<pm::Gauge>& model_f =
      pm::BuildGauge().Name("specsteer_model_info").Help("The models this replica serves (value 1)").Register(*reg);
};

CloudMetrics::CloudMetrics(const std::string& listen, const ModelLabels& llm, const ModelLabels& slm,
                           uint64_t kv_budget_bytes)
    : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  for (const auto* l : {&llm, &slm})
    m.model_f.Add({{"role", l->role}, {"name", l->name}, {"arch", l->arch}, {"fingerprint", l->fingerprint}}).Set(1);
  m.kv_budget.Set(static_cast<double>(kv_budget_bytes));
  m.serving.Set(1);
  if (listen.empty()) return;
  try {
    m.exposer = std::make_unique<pm::Exposer>(listen, 1);
  } catch (const std::exception& e) {
    throw Error("--metrics-listen '" + listen + "': cannot listen (" + e.what() + ")");
  }
  m.exposer->RegisterCollectable(m.reg);
}

CloudMetrics::~CloudMetrics() = default;

void CloudMetrics::prefix_cache(uint64_t llm_hit_tokens, uint64_t slm_hit_tokens, uint64_t bytes_held) {
  impl_->cached_llm.Increment(static_cast<double>(llm_hit_tokens));
  impl_->cached_slm.Increment(static_cast<double>(slm_hit_tokens));
  impl_->cache_bytes.Set(static_cast<double>(bytes_held));
}

int CloudMetrics::port() const {
  if (!impl_->exposer) return 0;
  const auto ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void CloudMetrics::session_opened(bool resumed, uint64_t x_llm, uint64_t x_slm, uint64_t resume_tokens) {
  auto& m = *impl_;
  (resumed ? m.opened_resumed : m.opened_new).Increment();
  if (resumed) m.resumed.Increment();
  m.prefill_llm.Increment(static_cast<double>(x_llm + resume_tokens));
  m.prefill_slm.Increment(static_cast<double>(x_slm + resume_tokens));
  m.resume_tokens.Increment(static_cast<double>(resume_tokens));
}

void CloudMetrics::session_refused(const std::string& reason) { impl_->refused_f.Add({{"reason", reason}}).Increment(); }
void CloudMetrics::session_ended(const std::string& how) { impl_->ended_f.Add({{"how", how}}).Increment(); }

void CloudMetrics::set_active(uint64_t sessions, uint64_t kv_bytes_reserved) {
  impl_->active.Set(static_cast<double>(sessions));
  impl_->kv_used.Set(static_cast<double>(kv_bytes_reserved));
}

void CloudMetrics::verified_block(uint64_t drafted, uint64_t accepted, bool rejected) {
  auto& m = *impl_;
  m.blocks.Increment();
  m.drafted.Increment(static_cast<double>(drafted));
  m.accepted.Increment(static_cast<double>(accepted));
  if (rejected) m.rejections.Increment();
}

void CloudMetrics::step() { impl_->steps.Increment(); }

void CloudMetrics::exchange(double server_seconds, uint64_t bytes_in, uint64_t bytes_out) {
  auto& m = *impl_;
  m.exchange_s.Observe(server_seconds);
  m.bytes_in.Increment(static_cast<double>(bytes_in));
  m.bytes_out.Increment(static_cast<double>(bytes_out));
}

void CloudMetrics::shared_pass(const char* model, uint64_t requests, uint64_t rows) {
  auto& m = *impl_;
  const bool llm = std::string_view(model) == "llm";
  (llm ? m.pass_llm : m.pass_slm).Observe(static_cast<double>(requests));
  (llm ? m.rows_llm : m.rows_slm).Increment(static_cast<double>(rows));
}

void CloudMetrics::set_serving(bool serving) { impl_->serving.Set(serving ? 1 : 0); }

}  // namespace specsteer::transport
