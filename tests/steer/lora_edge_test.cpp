// A LoRA Specialist: the adapter changes the edge's SLM+ and nothing else;
// no adapter-derived number goes up the wire.
#include <gtest/gtest.h>

#include <filesystem>

#include "steer/cloud.h"
#include "steer/generate.h"
#include "steer/messages.h"

using namespace specsteer;
using namespace specsteer::steer;

namespace {

std::string golden(const std::string& rel) { return std::string(SPECSTEER_FIXTURES) + "/golden/" + rel; }

GenerateRequest request(Method m, std::vector<LoraRef> lora) {
  GenerateRequest r;
  r.x = "Hello, my name is";
  r.personalized = r.x;  // a LoRA Specialist: the adapter is the personalization
  r.chat = false;
  r.settings.method = m;
  r.settings.max_new = 16;
  r.settings.seed = 3;
  r.edge_lora = std::move(lora);
  return r;
}

}  // namespace

TEST(LoraSpecialist, AdapterActsOnTheEdgeOnlyAndNeverGoesUp) {
  const std::string base = golden("tiny-qwen3-f32/tiny-qwen3-f32.gguf"), adapter = golden("lora/tiny-qwen3-f32-lora.gguf");
  if (!std::filesystem::exists(adapter)) GTEST_SKIP() << "fixtures absent";
  const Models models = Models::load(base, base, {.n_threads = 1});
  const std::vector<LoraRef> lora = load_lora_args({adapter + ":1"}, *models.slm);

  // slm+ with the adapter is another model than slm+ without it, and than slm (the cloud's SLM- view).
  const auto plain = generate(models, request(Method::SlmPlus, {}));
  const auto adapted = generate(models, request(Method::SlmPlus, lora));
  EXPECT_NE(plain.tokens, adapted.tokens);
  EXPECT_EQ(generate(models, request(Method::Slm, lora)).tokens, plain.tokens);  // slm ignores the edge's adapter

  // SpecSteer: the drafts come from the adapted SLM+; the uplink holds ids only.
  Trace with, without;
  const auto g = generate(models, request(Method::SpecSteer, lora), &with);
  generate(models, request(Method::SpecSteer, {}), &without);
  std::vector<int32_t> drafts_with, drafts_without;
  for (auto [trace, drafts] : {std::pair{&with, &drafts_with}, {&without, &drafts_without}})
    for (const auto& bytes : trace->uplink) {
      const Message m = decode(bytes);
      if (const auto* b = std::get_if<DraftBlock>(&m)) {
        EXPECT_TRUE(b->draft_probs.empty());
        drafts->insert(drafts->end(), b->drafts.begin(), b->drafts.end());
      } else if (const auto* o = std::get_if<SessionOpen>(&m)) {
        EXPECT_EQ(o->slm.fingerprint, identity_of(*models.slm).fingerprint);  // the base model's identity
      }
    }
  EXPECT_NE(drafts_with, drafts_without);
  // The cloud's SLM- ran on the base model: its positions are x + the agreed text, as without an adapter.
  EXPECT_EQ(g.schedule.positions_slm(), g.counters.positions_slm_minus);
}

TEST(LoraSpecialist, AnAdapterOfAnotherModelIsRefused) {
  const std::string qwen = golden("tiny-qwen3-f32/tiny-qwen3-f32.gguf"), adapter = golden("lora/tiny-qwen3-f32-lora.gguf");
  if (!std::filesystem::exists(adapter)) GTEST_SKIP() << "fixtures absent";
  const Models models = Models::load(qwen, qwen, {.n_threads = 1});
  auto other = Model::load(qwen, {.n_threads = 1});
  const std::vector<LoraRef> foreign = load_lora_args({adapter}, *other);
  EXPECT_THROW(generate(models, request(Method::SpecSteer, foreign)), Error);
}
