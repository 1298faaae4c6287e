#include "serve/wire_log.h"

#include "steer/messages.h"

namespace specsteer::serve {

namespace {

using json = nlohmann::json;

json token(const Tokenizer& tok, int32_t id) {
  std::string text;
  try {
    text = tok.token_bytes(id);
  } catch (const Error&) {
    text = "";  // an id the edge's tokenizer does not know (never sent by this edge)
  }
  return {{"id", id}, {"text", text}};
}

json tokens(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  json out = json::array();
  for (int32_t id : ids) out.push_back(token(tok, id));
  return out;
}

json steer_entries(const Tokenizer& tok, const std::vector<steer::IdValue>& v) {
  json out = json::array();
  for (const auto& e : v) {
    json t = token(tok, e.id);
    t["value"] = e.value;
    out.push_back(std::move(t));
  }
  return out;
}

json settings_json(const steer::Settings& s) {
  return {{"method", std::string(steer::method_name(s.method))},
          {"lambda", s.lambda},
          {"beta", s.beta},
          {"K", s.draft},
          {"steer_k", s.top_k},
          {"max_new", s.max_new},
          {"seed", s.seed},
          {"temperature", s.sampler.temperature},
          {"top_p", s.sampler.top_p},
          {"steer_candidates", std::string(steer::candidates_name(s.steer_candidates))}};
}

}  // namespace

json wire_log_json(const steer::Trace& trace, const Tokenizer& tok) {
  json messages = json::array();
  uint64_t up_bytes = 0, down_bytes = 0, drafted = 0, rejected = 0;
  std::string sent_text;  // everything textual that went up, in order
  for (size_t i = 0; i < trace.uplink.size(); ++i) {
    const steer::Message req = steer::decode(trace.uplink[i]);
    std::optional<steer::Message> reply;
    if (i < trace.downlink.size() && !trace.downlink[i].empty()) reply = steer::decode(trace.downlink[i]);
    up_bytes += trace.uplink[i].size();
    json up = {{"dir", "up"}, {"type", steer::message_name(req)}, {"bytes", trace.uplink[i].size()}};
    if (const auto* o = std::get_if<steer::SessionOpen>(&req)) {
      up["x"] = o->x_text;
      up["system"] = o->system;
      up["chat"] = o->chat;
      up["settings"] = settings_json(o->settings);
      up["edge_model"] = o->slm.name;
      if (!o->x_llm.empty() && o->x_text.empty()) up["x_ids"] = tokens(tok, o->x_slm);
      up["resume"] = tokens(tok, o->resume);
      json history = json::array();
      for (const ChatTurn& t : o->history) history.push_back({{"role", t.role}, {"text", t.text}});
      up["history"] = std::move(history);
      up["cache_user"] = o->cache_user;
      up["cache_conversation"] = o->cache_conversation;
      sent_text += o->system.empty() ? "" : o->system + "\n";
      for (const ChatTurn& t : o->history) sent_text += t.text.empty() ? "" : t.text + "\n";
      sent_text += o->x_text;
    } else if (const auto* b = std::get_if<steer::DraftBlock>(&req)) {
      const auto* v = reply ? std::get_if<steer::Verdict>(&*reply) : nullptr;
      up["committed"] = tokens(tok, b->committed);
      json d = json::array();
      for (size_t k = 0; k < b->drafts.size(); ++k) {
        json t = token(tok, b->drafts[k]);
        // No verdict (the link failed): the cloud may or may not have seen it.
        t["status"] = !v ? "unanswered" : k < v->n_accepted ? "accepted" : "rejected";
        if (v && k >= v->n_accepted) ++rejected;
        if (!b->draft_probs.empty()) t["draft_prob"] = b->draft_probs[k];
        d.push_back(std::move(t));
      }
      drafted += b->drafts.size();
      up["drafts"] = std::move(d);
      for (int32_t id : b->committed) sent_text += token(tok, id)["text"].get<std::string>();
      for (int32_t id : b->drafts) sent_text += token(tok, id)["text"].get<std::string>();
    } else if (const auto* s = std::get_if<steer::StepRequest>(&req)) {
      up["committed"] = tokens(tok, s->committed);
      for (int32_t id : s->committed) sent_text += token(tok, id)["text"].get<std::string>();
    }
    messages.push_back(std::move(up));
    if (!reply) continue;
    down_bytes += trace.downlink[i].size();
    json down = {{"dir", "down"}, {"type", steer::message_name(*reply)}, {"bytes", trace.downlink[i].size()}};
    if (const auto* a = std::get_if<steer::SessionAccept>(&*reply)) {
      down["llm"] = a->llm.name;
      down["x_llm_tokens"] = a->x_llm_tokens;
      down["x_llm_cached"] = a->x_llm_cached;
    } else if (const auto* v = std::get_if<steer::Verdict>(&*reply)) {
      down["n_accepted"] = v->n_accepted;
      down["rejected"] = v->rejected;
      down["steer"] = steer_entries(tok, v->steer);
      if (!v->target.empty()) down["target_entries"] = v->target.size();
    } else if (const auto* r = std::get_if<steer::StepReply>(&*reply)) {
      down["steer"] = steer_entries(tok, r->steer);
      if (!r->llm_logprobs.empty()) down["logprob_vectors"] = 2;
    } else if (const auto* e = std::get_if<steer::ErrorReply>(&*reply)) {
      down["error"] = e->message;
    }
    messages.push_back(std::move(down));
  }
  return {{"messages", messages},
          {"sent_text", sent_text},
          {"bytes_up", up_bytes},
          {"bytes_down", down_bytes},
          {"drafted", drafted},
          {"rejected_drafts", rejected},
          {"note", "every message as encoded by the edge (steer/messages.h); on the network each travels as the "
                   "equivalent protobuf (src/transport/specsteer.proto), so byte counts differ from gRPC's"}};
}

}  // namespace specsteer::serve
