// lightcosteer and costeer: the cloud's help comes for every token, so each
// step is one exchange (the tokens decided since the last one go up, the
// steering vector or the LLM's and SLM-'s log-probabilities come down) and
// one token fused on the edge. Nothing to draft, so nothing to pipeline.
#include <string>

#include "steer/edge_session.h"
#include "steer/formulas.h"

namespace specsteer::steer {

namespace {

// The cloud's part of the step: its reply to the tokens decided since the last one.
StepReply verify_step(EdgeLoop& e, Round& rd) {
  Counters& c = e.counters();
  const auto reply =
      e.cloud.exchange<StepReply>(StepRequest{0, e.unsent}, e.gen(), e.cloud_generated, &c.t_cloud_s, &c.t_codec_s);
  e.cloud_passes(rd, e.unsent.size());
  e.cloud_generated += static_cast<uint32_t>(e.unsent.size());
  e.unsent.clear();
  ++c.round_trips;
  return reply;
}

// The edge's part: LightCoSteer adds beta*h_SLM+ to the steering vector
// (Eq. 8 at every token); CoSteer runs its FTRL loop over the three rows.
int32_t recover_step(EdgeLoop& e, const StepReply& reply) {
  const Settings& s = e.s;
  std::span<const float> own = e.penalize(e.next, e.gen());
  sampling::Distribution d;
  if (s.method == Method::LightCoSteer) {
    d = recovery_distribution(reply.steer, own, s.beta, s.sampler);
  } else {
    if (reply.llm_logprobs.size() != static_cast<size_t>(e.V))
      throw CloudProtocolError("protocol: costeer StepReply carries " + std::to_string(reply.llm_logprobs.size()) +
                               " log-probabilities, expected " + std::to_string(e.V));
    const auto player = costeer_player(reply.llm_logprobs, reply.slm_logprobs, own, s.costeer);
    std::vector<int32_t> ids(player.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
    d = sampling::make_distribution(ids, player, s.sampler);
  }
  return s.sampler.greedy() ? d.ids[0] : sampling::sample(d, e.draws.recover(e.gen().size()));
}

}  // namespace

void run_step_loop(EdgeLoop& e) {
  Counters& c = e.counters();
  while (e.gen().size() < e.max_new()) {
    if (stop_requested(e.progress, e.r)) break;
    Round& rd = e.begin_round();
    rd.recovery = true;
    const StepReply reply = verify_step(e, rd);
    e.feed();
    Stopwatch sw;
    const int32_t t = recover_step(e, reply);
    c.t_recover_s += sw.seconds();
    c.t_edge_sample_s += sw.seconds();
    if (!e.commit(t)) break;
  }
}

}  // namespace specsteer::steer
