#include "personalize/personalize.h"

#include "model/model.h"

namespace specsteer::personalize {

std::vector<LoraRef> user_adapters(const profile::Store& store, std::string_view user, const Model& slm) {
  std::vector<LoraRef> out;
  for (const auto& a : store.adapters(user)) {
    try {
      out.push_back({LoraAdapter::load(a.path, slm), static_cast<float>(a.scale)});
    } catch (const Error& e) {
      throw Error("the LoRA adapter of profile user '" + std::string(user) + "': " + e.what());
    }
  }
  return out;
}

std::vector<profile::Entry> apply(const profile::Store& store, std::string_view user, profile::Task task, int retrieve_k, std::string_view x,
           const Model& slm, steer::GenerateRequest& req, bool user_adapters) {
  if (!store.has_user(user)) throw UnknownUser("user '" + std::string(user) + "' is not in the profile store");
  auto p = profile::build_prompts(store, user, task, x, retrieve_k);
  req.x = std::move(p.x);
  req.personalized = std::move(p.personalized);
  if (user_adapters)
    for (auto& ref : personalize::user_adapters(store, user, slm)) req.edge_lora.push_back(std::move(ref));
  return std::move(p.used);
}

}  // namespace specsteer::personalize
