#pragma once
// What a device remembers of its conversations to decide which earlier turns
// may go to the cloud: the replies whose every token already crossed to the
// cloud (a cloud method that did not fall back). Any other assistant turn —
// written by slm+/slm/llm on the device, a fallback's tail, a reply the
// client edited, one from before a restart — may carry profile words, so by
// default the cloud gets it empty while SLM+ still reads it (PRIVACY.md).
// The texts stay in this process's memory, on the device.
#include <cstddef>
#include <deque>
#include <initializer_list>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/secret.h"
#include "steer/generate.h"

namespace specsteer::steer {

class SentReplies {
 public:
  explicit SentReplies(size_t capacity = 4096) : capacity_(capacity) {}
  bool contains(const std::string& reply) const {
    std::lock_guard<std::mutex> lock(mu_);
    return texts_.count(reply) > 0;
  }
  // Records a finished generation's reply when all of it went to the cloud.
  void record(const GenerateRequest& req, const GenerationResult& r) {
    if (!uses_cloud(req.settings.method) || r.cloud_failed_at) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (!texts_.insert(r.text).second) return;
    order_.push_back(r.text);
    if (order_.size() > capacity_) {
      texts_.erase(order_.front());
      order_.pop_front();
    }
  }
  // Marks req.history's assistant turns the cloud has not seen as withheld.
  void withhold_unsent(GenerateRequest& req) const {
    req.withhold.clear();
    for (size_t i = 1; i < req.history.size(); i += 2)
      if (!contains(req.history[i].text)) req.withhold.push_back(i);
  }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::set<std::string> texts_;
  std::deque<std::string> order_;
};

// A bad message list: `param` names the place (OpenAI's error param, e.g.
// "messages[0].role"), what() says what is wrong.
class MessageError : public Error {
 public:
  MessageError(std::string param_, const std::string& why) : Error(why), param(std::move(param_)) {}
  std::string param;
};

// An OpenAI-style message list folded into what generate() takes: system and
// developer messages join the system text; user and assistant messages become
// alternating turns (two in a row from one side read as one); the last user
// turn is x and the turns before it are the history. `edge serve`'s JSON and
// the C API's structs feed it alike.
class ChatMessages {
 public:
  void add(size_t index, const std::string& role, const std::string& content) {
    const std::string at = "messages[" + std::to_string(index) + "]";
    if (role == "system" || role == "developer") {
      system_ += (system_.empty() || content.empty() ? "" : "\n") + content;
    } else if (role == "user" || role == "assistant") {
      if (turns_.empty() && role == "assistant")
        throw MessageError(at, "the conversation must start with a user message (after any system messages)");
      if (!turns_.empty() && turns_.back().role == role)
        turns_.back().text += "\n\n" + content;
      else
        turns_.push_back({role, content});
    } else {
      throw MessageError(at + ".role", "role '" + role + "' is not supported (system, developer, user, assistant)");
    }
  }
  const std::string& system() const { return system_; }
  // Checks the list ends with a non-empty user turn; then x() and history().
  void finish() {
    if (turns_.empty() || turns_.back().role != "user")
      throw MessageError("messages", "the last message must be a user message: it is what the reply answers");
    if (turns_.back().text.empty()) throw MessageError("messages", "the last user message has no text content");
  }
  const std::string& x() const { return turns_.back().text; }
  std::vector<ChatTurn> history() const { return {turns_.begin(), turns_.end() - 1}; }

 private:
  std::string system_;
  std::vector<ChatTurn> turns_;
};

// The conversation's first user message: the one profile entries are
// retrieved for, once per conversation, so SLM+'s prompt only grows.
inline const std::string& first_user_message(const std::vector<ChatTurn>& history, const std::string& x) {
  return history.empty() ? x : history.front().text;
}

// After personalization set req.x (and req.personalized) for the first user
// message: makes x the last one and the earlier turns its history, the first
// as the task template gave it to the cloud.
inline void adopt_history(GenerateRequest& req, std::vector<ChatTurn> history, const std::string& x) {
  if (history.empty()) return;
  history.front().text = req.x;
  req.x = x;
  req.history = std::move(history);
}

// The names a device gives the cloud for its users and conversations (cache
// keys): SHA-256 of a random secret this object draws and the name, cut to
// 128 bits, so the cloud can group a user's sessions and never tell who the
// user is. A new process (a restart) draws new names.
class CacheNames {
 public:
  // Sets req.cache_user and req.cache_conversation (user, system text, first message).
  void name(GenerateRequest& req, const std::string& user, const std::string& first) const {
    req.cache_user = keyed("user", {user});
    req.cache_conversation = keyed("conversation", {user, req.system, first});
  }

 private:
  std::string keyed(const char* kind, std::initializer_list<std::string> parts) const {
    std::string data = secret_ + kind;
    for (const auto& p : parts) data += '\0' + std::to_string(p.size()) + ':' + p;
    return sha256_hex(data).substr(0, 32);
  }
  const std::string secret_ = random_secret();
};

}  // namespace specsteer::steer
