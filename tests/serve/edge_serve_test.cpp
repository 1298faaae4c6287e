// `specsteer edge serve` end to end: a real `cloud serve` process, a real
// `edge serve` process holding only the small model, and OpenAI-style
// requests from cpp-httplib's client (what curl would send).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "steer/generate.h"

using namespace specsteer;
using namespace specsteer::steer;
namespace fs = std::filesystem;
using json = nlohmann::json;

extern char** environ;

namespace {

std::string fixture(const std::string& name) {
  return std::string(SPECSTEER_FIXTURES) + "/golden/" + name + "/" + name + ".gguf";
}
const std::string kLlm = fixture("tiny-qwen3-f32");
const std::string kSlm = fixture("tiny-qwen3-q8_0");
#define NEED_FIXTURES() \
  if (!fs::exists(kLlm) || !fs::exists(kSlm)) GTEST_SKIP() << "no shared fixtures"

const std::string kInput = "Write a short review of the film you saw this weekend.";

fs::path temp_dir() {
  static fs::path d = [] {
    fs::path p = fs::temp_directory_path() / ("specsteer-serve-" + std::to_string(getpid()));
    fs::create_directories(p);
    return p;
  }();
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A server process that writes its port to --port-file; killed at the end.
class ServerProc {
 public:
  explicit ServerProc(std::vector<std::string> args) {
    static int counter = 0;
    const int n = counter++;
    port_file_ = temp_dir() / ("port" + std::to_string(n));
    err_ = temp_dir() / ("server" + std::to_string(n) + ".err");
    args.insert(args.begin(), SPECSTEER_CLI);
    args.insert(args.end(), {"--port-file", port_file_.string()});
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 600 && pid_ > 0 && !fs::exists(port_file_); ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) != 0) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (fs::exists(port_file_)) port_ = std::stoi(slurp(port_file_));
  }
  ~ServerProc() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  std::string log() const { return slurp(err_); }

 private:
  fs::path port_file_, err_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A cloud with both models and an edge holding only the small model.
struct Deployment {
  ServerProc cloud;
  std::unique_ptr<ServerProc> edge;
  explicit Deployment(std::vector<std::string> edge_extra = {}, std::vector<std::string> cloud_extra = {})
      : cloud([&] {
          std::vector<std::string> a = {"cloud", "serve", "--llm", kLlm, "--slm", kSlm, "--listen", "127.0.0.1:0",
                                        "-t", "1"};
          if (std::find(cloud_extra.begin(), cloud_extra.end(), "--ctx") == cloud_extra.end()) a.insert(a.end(), {"--ctx", "256"});
          a.insert(a.end(), cloud_extra.begin(), cloud_extra.end());
          return a;
        }()) {
    if (!cloud.ok()) return;
    std::vector<std::string> a = {"edge", "serve", "--slm", kSlm, "--cloud",
                                  "127.0.0.1:" + std::to_string(cloud.port()), "--port", "0", "-t", "1"};
    a.insert(a.end(), edge_extra.begin(), edge_extra.end());
    edge = std::make_unique<ServerProc>(a);
  }
  bool ok() const { return cloud.ok() && edge && edge->ok(); }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", edge->port());
    c.set_read_timeout(60, 0);
    return c;
  }
};

#define START(var, ...)                                        \
  NEED_FIXTURES();                                             \
  Deployment var{std::vector<std::string>{__VA_ARGS__}};       \
  ASSERT_TRUE(var.ok()) << var.cloud.log() << (var.edge ? var.edge->log() : "")

const Models& models() {
  static Models m = Models::load(kLlm, kSlm, {.n_threads = 1});
  return m;
}

// The same generation in this process: x is the user message, no profile.
GenerationResult reference(const std::string& x, int n, bool chat, const std::string& system = "",
                           Method method = Method::SpecSteer) {
  GenerateRequest r;
  r.x = x;
  r.system = system;
  r.personalized = x;
  r.chat = chat;
  r.settings.method = method;
  r.settings.max_new = n;
  r.settings.seed = 7;
  return generate(models(), r);
}

json chat_body(int n, bool stream) {
  return {{"model", "any"},
          {"messages", json::array({{{"role", "system"}, {"content", "You are terse."}},
                                    {{"role", "user"}, {"content", kInput}}})},
          {"max_tokens", n},
          {"seed", 7},
          {"stream", stream}};
}

// The data lines of an SSE body, in order.
std::vector<std::string> events(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("data: ", 0) == 0) out.push_back(line.substr(6));
  return out;
}

}  // namespace

TEST(EdgeServe, ChatAndCompletionsStreamTheSameTextAsNonStreaming) {
  START(d);
  auto c = d.client();
  const int n = 16;
  // The system message travels to the cloud with x and frames both prompts.
  const auto ref = reference(kInput, n, true, "You are terse.");
  EXPECT_NE(ref.schedule.llm_prompt, reference(kInput, n, true).schedule.llm_prompt);

  auto plain = c.Post("/v1/chat/completions", chat_body(n, false).dump(), "application/json");
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->status, 200) << plain->body;
  const json j = json::parse(plain->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], ref.text) << "the edge with only its SLM equals the in-process run";
  EXPECT_EQ(j["choices"][0]["finish_reason"], ref.stop_reason == "length" ? "length" : "stop");
  EXPECT_EQ(j["usage"]["completion_tokens"], ref.tokens.size());
  EXPECT_EQ(j["specsteer"]["method"], "specsteer");
  EXPECT_EQ(j["specsteer"]["round_trips"], ref.counters.round_trips);
  EXPECT_EQ(j["specsteer"]["n_accepted"], ref.counters.n_accepted);
  EXPECT_GT(j["specsteer"]["bytes_up"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["specsteer"]["fallback"], false);

  auto streamed = c.Post("/v1/chat/completions", chat_body(n, true).dump(), "application/json");
  ASSERT_TRUE(streamed);
  ASSERT_EQ(streamed->status, 200) << streamed->body;
  EXPECT_EQ(streamed->get_header_value("Content-Type"), "text/event-stream");
  const auto ev = events(streamed->body);
  ASSERT_GE(ev.size(), 3u) << streamed->body;
  EXPECT_EQ(ev.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < ev.size(); ++i) {
    const json e = json::parse(ev[i]);
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    const json& delta = e["choices"][0]["delta"];
    if (delta.contains("content")) text += delta["content"].get<std::string>();
  }
  EXPECT_EQ(text, ref.text) << "the chunks concatenate to the non-streaming text";
  const json last = json::parse(ev[ev.size() - 2]);
  EXPECT_FALSE(last["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(last["usage"]["completion_tokens"], ref.tokens.size());
  EXPECT_EQ(last["specsteer"]["round_trips"], ref.counters.round_trips);

  // /v1/completions: the raw prompt, no chat template.
  const auto raw_ref = reference(kInput, n, false);
  json body = {{"prompt", kInput}, {"max_tokens", n}, {"seed", 7}};
  auto comp = c.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(comp);
  ASSERT_EQ(comp->status, 200) << comp->body;
  EXPECT_EQ(json::parse(comp->body)["choices"][0]["text"], raw_ref.text);
  body["stream"] = true;
  auto comp_s = c.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(comp_s);
  std::string comp_text;
  const auto cev = events(comp_s->body);
  ASSERT_FALSE(cev.empty());
  EXPECT_EQ(cev.back(), "[DONE]");
  for (size_t i = 0; i + 1 < cev.size(); ++i) comp_text += json::parse(cev[i])["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(comp_text, raw_ref.text);

  // A method and its knobs from the request's specsteer object.
  json sd = chat_body(n, false);
  sd["specsteer"] = {{"method", "sd"}, {"K", 3}};
  auto sd_r = c.Post("/v1/chat/completions", sd.dump(), "application/json");
  ASSERT_TRUE(sd_r);
  ASSERT_EQ(sd_r->status, 200) << sd_r->body;
  EXPECT_EQ(json::parse(sd_r->body)["specsteer"]["method"], "sd");

  // OpenAI's `stop`: the text ends before it, streamed or not.
  ASSERT_GE(ref.text.size(), 8u);
  // (whole UTF-8 characters: a JSON string holds nothing else)
  auto boundary = [&](size_t i) {
    while (i < ref.text.size() && (static_cast<unsigned char>(ref.text[i]) & 0xC0) == 0x80) ++i;
    return i;
  };
  const size_t from = boundary(ref.text.size() / 2);
  const std::string stop = ref.text.substr(from, boundary(from + 1) - from);
  ASSERT_FALSE(stop.empty());
  json stopped = chat_body(n, false);
  stopped["stop"] = json::array({stop});
  auto st_r = c.Post("/v1/chat/completions", stopped.dump(), "application/json");
  ASSERT_TRUE(st_r);
  ASSERT_EQ(st_r->status, 200) << st_r->body;
  EXPECT_EQ(json::parse(st_r->body)["choices"][0]["message"]["content"], ref.text.substr(0, ref.text.find(stop)));
  EXPECT_EQ(json::parse(st_r->body)["choices"][0]["finish_reason"], "stop");

  auto models_r = c.Get("/v1/models");
  ASSERT_TRUE(models_r);
  EXPECT_EQ(json::parse(models_r->body)["data"][0]["id"], "tiny-qwen3-q8_0");
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  EXPECT_EQ(json::parse(health->body)["generations"], 6);
  EXPECT_EQ(d.edge->log().find(kInput), std::string::npos) << "prompt text in the edge log";
}

TEST(EdgeServe, BadRequestsGetOpenAIShapedErrors) {
  // A profile store with one user, so `user` is checked.
  NEED_FIXTURES();
  const fs::path db = temp_dir() / "profile.db";
  const std::string sample = std::string(SPECSTEER_SOURCE_DIR) + "/data/longlamp-sample/abstract.jsonl";
  const std::string imp = std::string(SPECSTEER_CLI) + " profile import --db '" + db.string() +
                          "' --task abstract --data '" + sample + "' >/dev/null 2>&1";
  ASSERT_EQ(std::system(imp.c_str()), 0) << imp;
  START(d, "--profile-db", db.string(), "--task", "abstract");
  auto c = d.client();
  auto expect_error = [&](const httplib::Result& r, int status, const std::string& says, const char* param) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r->body;
    ASSERT_TRUE(j.contains("error")) << r->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(says), std::string::npos) << r->body;
    EXPECT_TRUE(j["error"]["type"].is_string());
    if (param) {
      EXPECT_EQ(j["error"]["param"], param) << r->body;
    }
  };
  expect_error(c.Post("/v1/chat/completions", "{not json", "application/json"), 400, "not valid JSON", nullptr);
  expect_error(c.Post("/v1/chat/completions", R"({"messages": []})", "application/json"), 400, "non-empty array",
               "messages");
  expect_error(c.Post("/v1/chat/completions", R"({"messages": [{"role": "assistant", "content": "hi"}]})",
                      "application/json"),
               400, "must start with a user message", "messages[0]");
  expect_error(c.Post("/v1/chat/completions",
                      R"({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})",
                      "application/json"),
               400, "last message must be a user message", "messages");
  expect_error(c.Post("/v1/chat/completions", R"({"messages": [{"role": "tool", "content": "42"}]})",
                      "application/json"),
               400, "role 'tool' is not supported", "messages[0].role");
  json bad = chat_body(4, false);
  bad["specsteer"] = {{"lambda", 0}};
  expect_error(c.Post("/v1/chat/completions", bad.dump(), "application/json"), 400, "lambda must be", nullptr);
  bad["specsteer"] = {{"beta", -1}};
  expect_error(c.Post("/v1/chat/completions", bad.dump(), "application/json"), 400, "beta must be", nullptr);
  bad = chat_body(0, false);
  expect_error(c.Post("/v1/chat/completions", bad.dump(), "application/json"), 400, "max_new (-n) must be >= 1",
               nullptr);
  bad = chat_body(4, false);
  bad["max_tokens"] = "ten";
  expect_error(c.Post("/v1/chat/completions", bad.dump(), "application/json"), 400, "must be an integer",
               "max_tokens");
  bad = chat_body(4, false);
  bad["specsteer"] = {{"method", "magic"}};
  expect_error(c.Post("/v1/chat/completions", bad.dump(), "application/json"), 400, "unknown method",
               "specsteer.method");
  bad = chat_body(4, false);
  bad["user"] = "Nobody Known";
  expect_error(c.Post("/v1/chat/completions", bad.dump(), "application/json"), 404, "not in the profile store",
               "user");
  expect_error(c.Post("/v1/completions", R"({"prompt": 3})", "application/json"), 400, "'prompt' must be", "prompt");
  expect_error(c.Get("/v1/nothing"), 404, "no route", nullptr);
  bad = chat_body(4, false);
  bad["stop"] = 3;
  expect_error(c.Post("/v1/chat/completions", bad.dump(), "application/json"), 400, "'stop' must be", "stop");
  bad = chat_body(4, false);
  bad["frequency_penalty"] = 0.5;
  expect_error(c.Post("/v1/chat/completions", bad.dump(), "application/json"), 400, "use 'repeat_penalty'",
               "frequency_penalty");
  bad = chat_body(4, false);
  bad["repeat_penalty"] = 0;
  expect_error(c.Post("/v1/chat/completions", bad.dump(), "application/json"), 400, "repeat_penalty must be",
               nullptr);
  // A known user is personalized (and answered).
  json ok = chat_body(4, false);
  ok["user"] = "Mira Okafor";
  ok["specsteer"] = {{"retrieve_k", 1}};  // the fixture's context is 256 tokens
  auto r = c.Post("/v1/chat/completions", ok.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST(EdgeServe, AClientThatDisconnectsMidStreamCancelsTheGeneration) {
  // 48 tokens need >= 12 exchanges of >= 100 ms: the client is gone long
  // before the generation could finish.
  START(d, "--net-delay-ms", "100");
  {
    auto c = d.client();
    int data_events = 0;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = chat_body(48, true).dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      data_events += static_cast<int>(std::string(data, len).find("data: ") != std::string::npos);
      return data_events == 0;  // hang up at the first chunk
    };
    c.send(req);
    EXPECT_GE(data_events, 1);
  }
  // The edge notices at its next write and stops; poll its counters.
  auto c = d.client();
  json h;
  for (int i = 0; i < 300; ++i) {
    auto r = c.Get("/health");
    ASSERT_TRUE(r);
    h = json::parse(r->body);
    if (h["cancelled"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(h["cancelled"], 1) << h.dump() << d.edge->log();
  EXPECT_EQ(h["generations"], 1);
  EXPECT_NE(d.edge->log().find("client went away, cancelled after"), std::string::npos) << d.edge->log();
}

TEST(EdgeServe, TheOfficialOpenAIClientGetsTheSameTextStreamedOrNot) {
  // The pinned `openai` npm package (tests/serve/openai_client), installed by
  // tools/deps.sh when node and npm are there and the registry is reachable.
  const fs::path dir = fs::path(SPECSTEER_SOURCE_DIR) / "tests/serve/openai_client";
  if (std::system("command -v node >/dev/null 2>&1") != 0) GTEST_SKIP() << "node not installed";
  if (!fs::exists(dir / "node_modules/openai/package.json"))
    GTEST_SKIP() << "the openai npm client is not installed (npm install in " << dir.string()
                 << ", done by tools/deps.sh when the registry is reachable)";
  START(d);
  const int n = 12;
  const auto ref = reference(kInput, n, true, "You are terse.");
  const fs::path out = temp_dir() / "openai_client.out";
  const std::string cmd = "node '" + (dir / "client.mjs").string() + "' http://127.0.0.1:" +
                          std::to_string(d.edge->port()) + "/v1 " + std::to_string(n) + " > '" + out.string() +
                          "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(out);
  const json j = json::parse(slurp(out), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << slurp(out);
  EXPECT_EQ(j["text"], ref.text);
  EXPECT_EQ(j["streamed"], ref.text);
  EXPECT_EQ(j["usage"]["completion_tokens"], ref.tokens.size());
  EXPECT_EQ(j["specsteer"]["round_trips"], ref.counters.round_trips);
  EXPECT_EQ(j["error"]["status"], 400) << "the client sees the 400 as an APIError";
}

// `profile lora` maps a user to an adapter of the SLM+: the edge applies it
// to that user's requests only (the text changes), llama.cpp's sampling
// fields are taken, and an adapter file that is gone is a 500 naming it.
TEST(EdgeServe, AProfileUsersAdapterPersonalizesTheirRequests) {
  NEED_FIXTURES();
  const fs::path dir = temp_dir() / "lora-user";
  fs::create_directories(dir);
  const fs::path db = dir / "profile.db", adapter = dir / "mira.gguf";
  const std::string cli = SPECSTEER_CLI;
  const std::string sample = std::string(SPECSTEER_SOURCE_DIR) + "/data/longlamp-sample/abstract.jsonl";
  for (const std::string& cmd :
       {cli + " profile import --db '" + db.string() + "' --task abstract --data '" + sample + "'",
        cli + " gguf synth-lora -m '" + kSlm + "' -o '" + adapter.string() + "' --rank 4 --std 0.2"}) {
    const std::string quiet = cmd + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(quiet.c_str()), 0) << cmd;
  }
  START(d, "--profile-db", db.string(), "--task", "abstract");
  auto c = d.client();
  json body = chat_body(8, false);
  body["user"] = "Mira Okafor";
  body["specsteer"] = {{"retrieve_k", 1}, {"method", "slm+"}};
  body["repeat_penalty"] = 1.2;
  body["top_k"] = 5;
  body["min_p"] = 0.05;
  auto text_of = [&](const json& b) {
    auto r = c.Post("/v1/chat/completions", b.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return std::string();
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>();
  };
  const std::string plain = text_of(body);
  const std::string set = cli + " profile lora --db '" + db.string() + "' --user 'Mira Okafor' --set '" +
                          adapter.string() + ":4' >/dev/null 2>&1";
  ASSERT_EQ(std::system(set.c_str()), 0) << set;
  const std::string adapted = text_of(body);
  EXPECT_NE(adapted, plain) << "the user's adapter changed nothing";
  EXPECT_EQ(text_of(body), adapted) << "deterministic";
  json other = body;
  other.erase("user");
  EXPECT_NE(text_of(other), adapted) << "another request got the user's adapter";
  fs::remove(adapter);
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500) << r->body;
  EXPECT_NE(r->body.find("mira.gguf"), std::string::npos) << r->body;
}


// llama-server's --api-key: every route but /health needs the bearer key
// (401 in OpenAI's shape otherwise), the official client sends it as its
// apiKey, and a profile store is not served off loopback without one.
TEST(EdgeServe, AnApiKeyGuardsEveryRouteButHealth) {
  START(d, "--api-key", "sk-test-0123456789abcdef");
  auto c = d.client();
  const std::string body = chat_body(4, false).dump();
  for (const auto& [header, ok] : std::vector<std::pair<std::string, bool>>{
           {"", false}, {"Bearer wrong-key", false}, {"sk-test-0123456789abcdef", false},
           {"Bearer sk-test-0123456789abcdef", true}}) {
    SCOPED_TRACE(header);
    httplib::Headers h;
    if (!header.empty()) h.emplace("Authorization", header);
    auto r = c.Post("/v1/chat/completions", h, body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, ok ? 200 : 401) << r->body;
    if (!ok) {
      const json e = json::parse(r->body);
      EXPECT_EQ(e["error"]["code"], "invalid_api_key");
      EXPECT_EQ(e["error"]["type"], "invalid_request_error");
    }
    auto m = c.Get("/v1/models", h);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status, ok ? 200 : 401);
  }
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << "a liveness probe needs no key";
  // The official client with the key.
  const fs::path dir = fs::path(SPECSTEER_SOURCE_DIR) / "tests/serve/openai_client";
  if (std::system("command -v node >/dev/null 2>&1") == 0 && fs::exists(dir / "node_modules/openai/package.json")) {
    const fs::path out = temp_dir() / "openai_client_key.out";
    const std::string base = "node '" + (dir / "client.mjs").string() + "' http://127.0.0.1:" +
                             std::to_string(d.edge->port()) + "/v1 4 ";
    ASSERT_EQ(std::system((base + "sk-test-0123456789abcdef > '" + out.string() + "' 2>&1").c_str()), 0) << slurp(out);
    EXPECT_EQ(json::parse(slurp(out))["text"], reference(kInput, 4, true, "You are terse.").text);
    EXPECT_NE(std::system((base + "sk-wrong > '" + out.string() + "' 2>&1").c_str()), 0);
    EXPECT_NE(slurp(out).find("401"), std::string::npos) << slurp(out);
  }
}

TEST(EdgeServe, AProfileStoreOffLoopbackNeedsAnApiKey) {
  NEED_FIXTURES();
  const fs::path db = temp_dir() / "door.db";
  {
    std::ofstream(temp_dir() / "door.jsonl")
        << R"({"id":"r1","reviewerId":"u1","input":"x","output":"y","profile":[{"id":"p1","reviewText":"private words here","summary":"s","overall":"5.0","description":"d"}]})"
        << "\n";
    const std::string imp = std::string(SPECSTEER_CLI) + " profile import --db '" + db.string() +
                            "' --task review --data '" + (temp_dir() / "door.jsonl").string() + "' > /dev/null";
    ASSERT_EQ(std::system(imp.c_str()), 0);
  }
  auto run = [&](const std::string& extra) {
    const fs::path err = temp_dir() / "door.err";
    const std::string cmd = std::string(SPECSTEER_CLI) + " edge serve --slm " + kSlm + " --llm " + kLlm +
                            " --host 0.0.0.0 --port 0 --profile-db '" + db.string() + "' --task review -t 1 " + extra +
                            " 2> '" + err.string() + "'";
    const int rc = std::system(cmd.c_str());
    return std::make_pair(rc, slurp(err));
  };
  const auto [rc, err] = run("");
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.find("--api-key"), std::string::npos) << err;
  // With a key (or --no-api-key) it starts, warning that it is reachable from the network.
  for (const std::vector<std::string>& extra :
       std::vector<std::vector<std::string>>{{"--api-key", "sk-0123456789abcdef"}, {"--no-api-key"}}) {
    SCOPED_TRACE(extra[0]);
    std::vector<std::string> args = {"edge", "serve", "--slm", kSlm, "--llm", kLlm, "--host", "0.0.0.0", "--port", "0",
                                     "--profile-db", db.string(), "--task", "review", "-t", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    ServerProc s(args);
    ASSERT_TRUE(s.ok()) << s.log();
    EXPECT_NE(s.log().find("not loopback"), std::string::npos) << s.log();
  }
}

// The chat page in a real browser (Debian's chromium driven by puppeteer-core,
// tests/serve/browser): it asks for the key, lists the profile users, streams
// a reply, and its inspector shows exactly the wire log: x as sent and every
// drafted token with its verdict, next to the profile entries, which the wire
// log never holds. Stop ends a long reply.
TEST(EdgeServe, TheChatPageStreamsAndShowsWhatLeftTheDevice) {
  const fs::path dir = fs::path(SPECSTEER_SOURCE_DIR) / "tests/serve/browser";
  const bool need = std::getenv("SPECSTEER_REQUIRE_ALL") && std::string(std::getenv("SPECSTEER_REQUIRE_ALL")) == "1";
  for (const char* what : {"command -v node >/dev/null 2>&1", "test -x /usr/bin/chromium"})
    if (std::system(what) != 0) {
      if (need) FAIL() << "missing: " << what << " (bash tools/deps.sh --test)";
      GTEST_SKIP() << "missing: " << what;
    }
  if (!fs::exists(dir / "node_modules/puppeteer-core/package.json")) {
    if (need) FAIL() << "puppeteer-core is not installed in " << dir.string() << " (bash tools/deps.sh --test)";
    GTEST_SKIP() << "puppeteer-core not installed";
  }
  const fs::path root = SPECSTEER_SOURCE_DIR;
  const std::string slm = (root / "models/minilamp/specialist.gguf").string();
  const std::string llm = (root / "models/minilamp/generalist.gguf").string();
  const fs::path data = root / "data/minilamp/review.jsonl";
  const fs::path db = temp_dir() / "page.db";
  fs::remove(db);
  ASSERT_EQ(std::system((std::string(SPECSTEER_CLI) + " profile import --db '" + db.string() +
                         "' --task review --data '" + data.string() + "' > /dev/null")
                            .c_str()),
            0);
  std::string first;
  std::getline(std::ifstream(data), first);
  const json rec = json::parse(first);
  const std::string user = rec["reviewerId"], x = rec["input"];
  const std::string key = "sk-page-0123456789abcdef";
  ServerProc cloud({"cloud", "serve", "--llm", llm, "--slm", slm, "--listen", "127.0.0.1:0", "-t", "1"});
  ASSERT_TRUE(cloud.ok()) << cloud.log();
  ServerProc edge({"edge", "serve", "--slm", slm, "--cloud", "127.0.0.1:" + std::to_string(cloud.port()), "--port",
                   "0", "-t", "1", "--profile-db", db.string(), "--task", "review", "--api-key", key,
                   "--net-delay-ms", "30"});  // slow enough a link for Stop to land mid-reply
  ASSERT_TRUE(edge.ok()) << edge.log();

  const fs::path out = temp_dir() / "chat_page.out";
  const std::string cmd = "node '" + (dir / "chat_page.mjs").string() + "' http://127.0.0.1:" +
                          std::to_string(edge.port()) + " '" + user + "' '" + x + "' " + key + " > '" + out.string() +
                          "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(out);
  const json p = json::parse(slurp(out), nullptr, false);
  ASSERT_FALSE(p.is_discarded()) << slurp(out);
  EXPECT_EQ(p["status"], 200);
  EXPECT_EQ(p["content_type"].get<std::string>().rfind("text/html", 0), 0u);
  EXPECT_TRUE(p["has_input"].get<bool>() && p["has_send"].get<bool>());
  EXPECT_EQ(p["asked_for_key"], true);
  EXPECT_NE(std::find(p["users"].begin(), p["users"].end(), user), p["users"].end());
  EXPECT_TRUE(p["page_errors"].empty()) << p["page_errors"].dump();

  // The reply streamed in pieces and equals the same request without the page.
  EXPECT_GT(p["updates"].get<int>(), 3);
  httplib::Client c("127.0.0.1", edge.port());
  c.set_read_timeout(120, 0);
  const json body = {{"model", "edge"},
                     {"messages", json::array({{{"role", "user"}, {"content", x}}})},
                     {"max_tokens", 128},
                     {"user", user},
                     {"specsteer", {{"method", "specsteer"}, {"lambda", 0.5}, {"task", "review"}}}};
  auto api = c.Post("/v1/chat/completions", {{"Authorization", "Bearer " + key}}, body.dump(), "application/json");
  ASSERT_TRUE(api);
  ASSERT_EQ(api->status, 200) << api->body;
  const json direct = json::parse(api->body);
  EXPECT_EQ(p["reply"], direct["choices"][0]["message"]["content"]);

  // The inspector shows the wire log: x as sent, every drafted and committed token with its status.
  const json& wire = p["wire"];
  const json& shown = p["shown"];
  std::string open_x;
  std::vector<std::pair<std::string, std::string>> sent;
  for (const auto& m : wire["messages"]) {
    if (m["dir"] != "up") continue;
    if (m["type"] == "SessionOpen") open_x = m["x"];
    for (const auto& t : m.value("committed", json::array())) sent.emplace_back(t["text"], "committed");
    for (const auto& t : m.value("drafts", json::array())) sent.emplace_back(t["text"], t["status"]);
  }
  EXPECT_EQ(open_x, x) << "x as the cloud received it";
  EXPECT_EQ(shown["x"], open_x);
  ASSERT_EQ(shown["tokens"].size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(shown["tokens"][i]["text"], sent[i].first) << i;
    EXPECT_EQ(shown["tokens"][i]["status"], sent[i].second) << i;
  }
  EXPECT_GT(wire["drafted"].get<int>(), 0);
  // The profile entries were used, are shown, and are nowhere in the wire log.
  ASSERT_FALSE(shown["entries"].empty());
  ASSERT_FALSE(direct["specsteer"]["profile_entries"].empty());
  const std::string wire_text = wire.dump();
  for (const auto& e : direct["specsteer"]["profile_entries"]) {
    const std::string review = e.value("reviewText", "");
    ASSERT_GT(review.size(), 20u);
    EXPECT_EQ(wire_text.find(review), std::string::npos) << "a profile entry in the wire log";
    bool on_page = false;
    for (const auto& s : shown["entries"]) on_page |= s.get<std::string>().find(review) != std::string::npos;
    EXPECT_TRUE(on_page) << review;
  }
  // Stop ends a long reply and the page can send again.
  EXPECT_EQ(p["send_enabled_after_stop"], true);
  EXPECT_NE(p["stopped_text"].get<std::string>().find("stopped"), std::string::npos) << p["stopped_text"];
  // The wire log is behind the key too, and unknown ids are a 404.
  EXPECT_EQ(c.Get("/v1/wire/" + wire["id"].get<std::string>())->status, 401);
  EXPECT_EQ(c.Get("/v1/wire/nope", {{"Authorization", "Bearer " + key}})->status, 404);
}

// A chat through edge serve keeps its conversation: x is the last user turn,
// the earlier turns travel as history (SLM+'s prompt and the cloud's x grow
// turn by turn), and the prefix caches on both sides reuse the previous
// turns; with --cache-ram 0 on both every reply is the same.
namespace {

struct Turn {
  std::string reply;
  json usage, specsteer;
};

std::vector<Turn> chat_four_turns(const Deployment& d, const std::string& user) {
  auto c = d.client();
  json messages = json::array({{{"role", "system"}, {"content", "You are terse."}}});
  const std::vector<std::string> asks = {kInput, "Say that again, shorter.", "Now as a question.",
                                         "And in one word?"};
  std::vector<Turn> out;
  for (const auto& ask : asks) {
    messages.push_back({{"role", "user"}, {"content", ask}});
    json body = {{"messages", messages}, {"max_tokens", 6}, {"seed", 7}, {"user", user},
                 {"specsteer", {{"retrieve_k", 1}}}};
    auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
    EXPECT_TRUE(r);
    if (!r) return out;
    EXPECT_EQ(r->status, 200) << r->body;
    const json j = json::parse(r->body);
    Turn t{j["choices"][0]["message"]["content"].get<std::string>(), j["usage"], j["specsteer"]};
    messages.push_back({{"role", "assistant"}, {"content", t.reply}});
    out.push_back(std::move(t));
  }
  return out;
}

fs::path abstract_profile_db(const std::string& name) {
  const fs::path db = temp_dir() / (name + ".db");
  const std::string sample = std::string(SPECSTEER_SOURCE_DIR) + "/data/longlamp-sample/abstract.jsonl";
  const std::string imp = std::string(SPECSTEER_CLI) + " profile import --db '" + db.string() +
                          "' --task abstract --data '" + sample + "' >/dev/null 2>&1";
  EXPECT_EQ(std::system(imp.c_str()), 0) << imp;
  return db;
}

}  // namespace

TEST(EdgeServe, AChatKeepsItsConversationAndReusesItOnBothSides) {
  NEED_FIXTURES();
  const fs::path db = abstract_profile_db("multiturn");
  std::vector<Turn> cached, uncached;
  std::string wire_turn2;
  {
    Deployment d({"--profile-db", db.string(), "--task", "abstract"}, {});
    ASSERT_TRUE(d.ok()) << d.cloud.log() << (d.edge ? d.edge->log() : "");
    cached = chat_four_turns(d, "Mira Okafor");
    ASSERT_EQ(cached.size(), 4u);
    auto c = d.client();
    auto w = c.Get("/v1/wire/" + cached[1].specsteer["wire_id"].get<std::string>());
    ASSERT_TRUE(w);
    wire_turn2 = w->body;
    EXPECT_EQ(d.edge->log().find("Say that again"), std::string::npos) << "prompt text in the edge log";
    EXPECT_NE(d.cloud.log().find("prompt tokens from the cache"), std::string::npos) << d.cloud.log();
  }
  {
    Deployment d({"--profile-db", db.string(), "--task", "abstract", "--cache-ram", "0"},
                 {"--cache-ram", "0"});
    ASSERT_TRUE(d.ok()) << d.cloud.log() << (d.edge ? d.edge->log() : "");
    uncached = chat_four_turns(d, "Mira Okafor");
    ASSERT_EQ(uncached.size(), 4u);
  }
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE("turn " + std::to_string(i + 1));
    EXPECT_EQ(cached[i].reply, uncached[i].reply) << "the caches changed a reply";
    EXPECT_EQ(cached[i].usage["prompt_tokens"], uncached[i].usage["prompt_tokens"]);
    EXPECT_EQ(uncached[i].usage["prompt_tokens_details"]["cached_tokens"], 0);
    EXPECT_EQ(uncached[i].specsteer["cloud_cached_tokens"], 0);
    EXPECT_EQ(cached[i].specsteer["history_turns"], 2 * i);
    EXPECT_EQ(cached[i].specsteer["withheld_turns"], 0) << "specsteer's replies already crossed to the cloud";
    if (i == 0) continue;
    // SLM+'s prompt grows with the conversation (not just the last message).
    EXPECT_GT(cached[i].usage["prompt_tokens"].get<int>(),
              cached[i - 1].usage["prompt_tokens"].get<int>() + cached[i - 1].usage["completion_tokens"].get<int>());
    const int prompt = cached[i].usage["prompt_tokens"], reused = cached[i].usage["prompt_tokens_details"]["cached_tokens"];
    EXPECT_GE(2 * reused, prompt) << "the device re-read most of the conversation";
    EXPECT_GT(cached[i].specsteer["cloud_cached_tokens"].get<int>(), 0) << "the cloud re-read the conversation";
  }
  // Turn 2 sent the cloud the conversation: turn 1's question and reply,
  // never the profile's entries.
  const json w = json::parse(wire_turn2);
  const json& open = w["messages"][0];
  ASSERT_EQ(open["history"].size(), 2u) << open.dump();
  EXPECT_EQ(open["history"][0]["text"], kInput);
  EXPECT_EQ(open["history"][1]["text"], cached[0].reply);
  EXPECT_EQ(open["x"], "Say that again, shorter.");
  for (const auto& e : cached[1].specsteer["profile_entries"]) {
    for (const auto& [k, v] : e.items()) {
      if (v.is_string() && v.get<std::string>().size() > 20) {
        EXPECT_EQ(wire_turn2.find(v.get<std::string>()), std::string::npos) << "a profile entry left the device";
      }
    }
  }
}

TEST(EdgeServe, AReplyWrittenOnTheDeviceAloneIsSentEmptyUnlessAllowed) {
  NEED_FIXTURES();
  for (const bool allow : {false, true}) {
    SCOPED_TRACE(allow ? "--history-to-cloud all" : "default");
    std::vector<std::string> edge_args;
    if (allow) edge_args = {"--history-to-cloud", "all"};
    Deployment d(edge_args);
    ASSERT_TRUE(d.ok()) << d.cloud.log() << (d.edge ? d.edge->log() : "");
    auto c = d.client();
    json body = {{"messages", json::array({{{"role", "user"}, {"content", kInput}}})},
                 {"max_tokens", 6},
                 {"seed", 7},
                 {"specsteer", {{"method", "slm+"}}}};
    auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no reply");
    const std::string local = json::parse(r->body)["choices"][0]["message"]["content"];
    body["messages"].push_back({{"role", "assistant"}, {"content", local}});
    body["messages"].push_back({{"role", "user"}, {"content", "Shorter."}});
    body["specsteer"] = {{"method", "specsteer"}};
    r = c.Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(r && r->status == 200) << (r ? r->body : "no reply");
    const json j = json::parse(r->body);
    EXPECT_EQ(j["specsteer"]["withheld_turns"], allow ? 0 : 1);
    auto w = c.Get("/v1/wire/" + j["specsteer"]["wire_id"].get<std::string>());
    ASSERT_TRUE(w);
    const json open = json::parse(w->body)["messages"][0];
    ASSERT_EQ(open["history"].size(), 2u);
    EXPECT_EQ(open["history"][1]["text"], allow ? local : "");
    EXPECT_EQ(open["history"][0]["text"], kInput);
  }
}
