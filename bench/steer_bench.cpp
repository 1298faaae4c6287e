// Protocol throughput on the fixture models: llm alone vs specsteer at
// lambda 0.1 / 0.5 / 1.0 (and sd), one process, same loaded models.
// items_per_second = generated tokens per second, whole generation
// (prefill included); counters give acceptance and traffic per run.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "steer/cloud.h"
#include "steer/generate.h"
#include "steer/messages.h"

using namespace specsteer;
using namespace specsteer::steer;

namespace {

// The shared fixtures sit beside the checkout (../shared/fixtures), or where
// $SPECSTEER_FIXTURES says.
std::string fixture(const std::string& name) {
  const char* env = std::getenv("SPECSTEER_FIXTURES");
  const std::filesystem::path root =
      env ? std::filesystem::path(env)
          : std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "shared" / "fixtures";
  return (root / "golden" / name / (name + ".gguf")).string();
}

const Models& models(int slm) {
  static Models q8 = Models::load(fixture("tiny-qwen3-f32"), fixture("tiny-qwen3-q8_0"), {.n_threads = 1});
  static Models q2 = Models::load(fixture("tiny-qwen3-f32"), fixture("tiny-qwen2-q8_0"), {.n_threads = 1});
  return slm == 0 ? q8 : q2;
}

// args: method, lambda*100, slm (0 = qwen3-q8_0, 1 = qwen2-q8_0)
void BM_Generate(benchmark::State& st) {
  GenerateRequest req;
  req.x = "Write a short review of the film you saw this weekend.";
  req.personalized = "Private notes: I love slow science-fiction and hate jump scares.\n\n" + req.x;
  req.settings.method = static_cast<Method>(st.range(0));
  req.settings.lambda = st.range(1) / 100.0;
  req.settings.max_new = 64;
  const Models& m = models(static_cast<int>(st.range(2)));
  Counters sum;
  uint64_t tokens = 0, runs = 0;
  double gen_tps = 0;
  for (auto _ : st) {
    auto r = generate(m, req);
    tokens += r.tokens.size();
    sum.n_drafted += r.counters.n_drafted;
    sum.n_accepted += r.counters.n_accepted;
    sum.round_trips += r.counters.round_trips;
    sum.bytes_up += r.counters.bytes_up;
    sum.bytes_down += r.counters.bytes_down;
    gen_tps += r.counters.gen_tok_per_s();
    ++runs;
  }
  st.SetItemsProcessed(static_cast<int64_t>(tokens));
  st.counters["accept"] = sum.acceptance_rate();
  st.counters["rt_per_tok"] = tokens ? double(sum.round_trips) / double(tokens) : 0;
  st.counters["up_B_per_tok"] = tokens ? double(sum.bytes_up) / double(tokens) : 0;
  st.counters["down_B_per_tok"] = tokens ? double(sum.bytes_down) / double(tokens) : 0;
  st.counters["decode_tok_s"] = runs ? gen_tps / double(runs) : 0;
  st.SetLabel(std::string(method_name(req.settings.method)) + (st.range(2) ? " slm=qwen2-q8_0" : " slm=qwen3-q8_0"));
}

void Args(benchmark::internal::Benchmark* b) {
  for (int slm : {0, 1}) {
    b->Args({static_cast<int>(Method::Llm), 0, slm});
    for (int lam : {10, 50, 100}) b->Args({static_cast<int>(Method::SpecSteer), lam, slm});
    b->Args({static_cast<int>(Method::Sd), 0, slm});
  }
}
BENCHMARK(BM_Generate)->Apply(Args)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// What a resumed session costs the cloud: one SessionOpen whose prefill
// covers x + the R decided tokens of its resume point, on both models (the
// cloud in process, so only the compute counts). Models: $SPECSTEER_RESUME_LLM
// and $SPECSTEER_RESUME_SLM, else the bundled MiniLaMP pair. arg: R.
const Models& resume_models() {
  static Models m = [] {
    const std::filesystem::path project = std::filesystem::path(__FILE__).parent_path().parent_path();
    const char* llm = std::getenv("SPECSTEER_RESUME_LLM");
    const char* slm = std::getenv("SPECSTEER_RESUME_SLM");
    return Models::load(llm ? llm : (project / "models/minilamp/generalist.gguf").string(),
                        slm ? slm : (project / "models/minilamp/specialist.gguf").string(), {.n_threads = 0});
  }();
  return m;
}

void BM_ResumeOpen(benchmark::State& st) {
  const Models& m = resume_models();
  auto cloud = CloudService::from_models(m.llm, m.slm, {.n_ctx = 1024});
  SessionOpen o;
  o.llm = identity_of(*m.llm);
  o.slm = identity_of(*m.slm);
  o.x_text = "Generate a review text written by a reviewer who has given an overall rating of \"4.0\" for a "
             "product with description \"travel kettle\". The summary of the review text is \"Boils fast, "
             "the lid is loose\".";
  o.settings.max_new = 600;
  o.resume.resize(static_cast<size_t>(st.range(0)));
  for (size_t i = 0; i < o.resume.size(); ++i) o.resume[i] = static_cast<int32_t>(100 + (i * 7) % 200);
  const std::vector<uint8_t> open = encode(o);
  for (auto _ : st) {
    const Message reply = decode(cloud->handle(open));
    const auto* a = std::get_if<SessionAccept>(&reply);
    if (!a) {
      st.SkipWithError(std::get<ErrorReply>(reply).message.c_str());
      break;
    }
    cloud->handle(encode(Close{a->session}));
  }
  st.counters["resume_tokens"] = static_cast<double>(st.range(0));
  st.SetLabel(m.llm->path().substr(m.llm->path().rfind('/') + 1));
}
BENCHMARK(BM_ResumeOpen)->Arg(0)->Arg(64)->Arg(256)->Arg(512)->Unit(benchmark::kMillisecond)->MinTime(1.0);

}  // namespace
