// specsteer profile import|search|stats|prompt|lora: the device's private profile
// store (src/profile). Parses flags and prints; the logic is in the library.
// Search and prompt print stored entries because the user asked for them;
// import reports only counts and error locations, never stored text.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/error.h"
#include "gguf/gguf.h"
#include "model/lora.h"
#include "profile/profile.h"

namespace {

using namespace specsteer::profile;
using nlohmann::json;

json entry_json(const Entry& e, size_t rank) {
  return {{"rank", rank}, {"task", std::string(task_name(e.task))}, {"score", e.score}, {"fields", e.fields}};
}

void print_entry(const Entry& e, size_t rank) {
  std::printf("%zu. [%s] score %.4f\n", rank, std::string(task_name(e.task)).c_str(), e.score);
  for (const auto& [k, v] : e.fields) std::printf("   %s: %s\n", k.c_str(), v.c_str());
}

struct ImportOpts {
  std::string db, task, data;
  bool strict = false;
};
struct SearchOpts {
  std::string db, user, query, task;
  int k = 4;
  bool json = false;
};
struct StatsOpts {
  std::string db;
  bool json = false;
};
struct PromptOpts {
  std::string db, user, task, input;
  int k = 4;
  bool json = false;
};

struct LoraOpts {
  std::string db, user;
  std::vector<std::string> set;
  bool clear = false, json = false;
};

// A file named for `profile lora --set` must be a LoRA adapter already (its
// base model is checked when a generation loads it).
void check_adapter_file(const std::string& path) {
  const auto f = specsteer::gguf::File::open(path);
  const auto type = f->get_string("general.type");
  const auto atype = f->get_string("adapter.type");
  if (!type || *type != "adapter" || !atype || *atype != "lora")
    throw specsteer::Error(path + ": not a LoRA adapter (general.type '" + type.value_or("missing") +
                           "', adapter.type '" + atype.value_or("missing") + "'; expected 'adapter' and 'lora')");
}

const char* kTasks = "abstract|review|writing|lamp4|lamp5|lamp7";

specsteer::cli::Registrar reg("profile", [](CLI::App& root) {
  auto* profile = root.add_subcommand("profile", "The device's private profile store (SQLite + FTS5, BM25)");
  profile->require_subcommand(1);

  auto io = std::make_shared<ImportOpts>();
  auto* imp = profile->add_subcommand(
      "import", "Import LongLaMP/LaMP records (JSON array or JSONL); re-import is idempotent, an entry whose id is stored "
      "with other text replaces it");
  imp->add_option("--db", io->db, "Profile database (created with 0600 permissions)")->required();
  imp->add_option("--task", io->task, kTasks)->required();
  imp->add_option("--data", io->data, "Records file: JSON array or JSONL")->required();
  imp->add_flag("--strict", io->strict, "All or nothing: any bad record aborts and nothing is written");
  imp->callback([io] {
    Task task = parse_task(io->task);
    Store store = Store::open(io->db);
    ImportReport r = store.import_file(task, io->data, io->strict);
    for (const auto& e : r.errors) std::fprintf(stderr, "warning: %s\n", e.c_str());
    std::printf("imported %zu records: %zu new entries, %zu duplicates, %zu new users, %zu skipped\n", r.records,
                r.entries, r.duplicates, r.users, r.skipped);
    if (r.replaced)
      std::printf("replaced %zu entries: their record id was stored with different text\n", r.replaced);
    if (!r.errors.empty()) throw CLI::RuntimeError(2);  // partial import: exit 2
  });

  auto so = std::make_shared<SearchOpts>();
  auto* search = profile->add_subcommand("search", "Top-k BM25 entries of a user's profile for a query");
  search->add_option("--db", so->db, "Profile database")->required();
  search->add_option("--user", so->user, "User key (name / reviewerId / author / user_id)")->required();
  search->add_option("--query", so->query, "Query text (words only; no FTS5 syntax is interpreted)")->required();
  search->add_option("-k", so->k, "Number of entries")->check(CLI::NonNegativeNumber);
  search->add_option("--task", so->task, std::string(kTasks) + "; default: all tasks of the user, merged by score");
  search->add_flag("--json", so->json, "Print JSON");
  search->callback([so] {
    Store store = Store::open(so->db, Store::Mode::ReadOnly);
    std::vector<Entry> hits = so->task.empty() ? store.search_all(so->user, so->query, so->k)
                                               : store.search(so->user, parse_task(so->task), so->query, so->k);
    if (so->json) {
      json out = json::array();
      for (size_t i = 0; i < hits.size(); ++i) out.push_back(entry_json(hits[i], i + 1));
      std::cout << out.dump(2) << "\n";
      return;
    }
    if (hits.empty()) std::printf("no matching entries\n");
    for (size_t i = 0; i < hits.size(); ++i) print_entry(hits[i], i + 1);
  });

  auto st = std::make_shared<StatsOpts>();
  auto* stats = profile->add_subcommand("stats", "Users, entries per task and database size");
  stats->add_option("--db", st->db, "Profile database")->required();
  stats->add_flag("--json", st->json, "Print JSON");
  stats->callback([st] {
    Store store = Store::open(st->db, Store::Mode::ReadOnly);
    StoreStats s = store.stats();
    if (st->json) {
      json entries = json::object(), users = json::object();
      for (const auto& [t, n] : s.entries) entries[std::string(task_name(t))] = n;
      for (const auto& [t, n] : s.users_per_task) users[std::string(task_name(t))] = n;
      json out = {{"users", s.users}, {"entries", entries}, {"users_per_task", users}, {"db_bytes", s.db_bytes}};
      std::cout << out.dump(2) << "\n";
      return;
    }
    std::printf("users: %zu\n", s.users);
    for (const auto& [t, n] : s.entries)
      std::printf("entries %-8s %zu (%zu users)\n", std::string(task_name(t)).c_str(), n, s.users_per_task[t]);
    std::printf("database size: %llu bytes\n", static_cast<unsigned long long>(s.db_bytes));
  });

  auto po = std::make_shared<PromptOpts>();
  auto* prompt = profile->add_subcommand(
      "prompt", "Print x (what the cloud sees) and the personalized prompt (device only) for an input");
  prompt->add_option("--db", po->db, "Profile database")->required();
  prompt->add_option("--user", po->user, "User key")->required();
  prompt->add_option("--task", po->task, kTasks)->required();
  prompt->add_option("--input", po->input, "The task input x (also the BM25 query)")->required();
  prompt->add_option("-k", po->k, "Number of retrieved entries")->check(CLI::NonNegativeNumber);
  prompt->add_flag("--json", po->json, "Print JSON");
  prompt->callback([po] {
    Store store = Store::open(po->db, Store::Mode::ReadOnly);
    Task task = parse_task(po->task);
    Prompts p = build_prompts(store, po->user, task, po->input, po->k);
    if (po->json) {
      json used = json::array();
      for (size_t i = 0; i < p.used.size(); ++i) used.push_back(entry_json(p.used[i], i + 1));
      json out = {{"task", std::string(task_name(task))}, {"x", p.x}, {"personalized", p.personalized},
                  {"used", used}};
      std::cout << out.dump(2) << "\n";
      return;
    }
    std::printf("=== x (cloud) ===\n%s\n=== personalized (device, %zu entries) ===\n%s\n", p.x.c_str(),
                p.used.size(), p.personalized.c_str());
  });

  auto lo = std::make_shared<LoraOpts>();
  auto* lora = profile->add_subcommand(
      "lora", "Map a user to LoRA adapters of the SLM+ (private: they stay on the device); `generate --profile-db "
              "DB --user U` and `edge serve` apply them. Without --set/--clear: list the user's adapters");
  lora->add_option("--db", lo->db, "Profile database (created with 0600 permissions)")->required();
  lora->add_option("--user", lo->user, "User key")->required();
  lora->add_option("--set", lo->set, "Adapter FILE or FILE:SCALE (llama.cpp GGUF); repeatable; replaces the user's list");
  lora->add_flag("--clear", lo->clear, "Remove the user's adapters");
  lora->add_flag("--json", lo->json, "Print JSON");
  lora->callback([lo] {
    if (lo->clear && !lo->set.empty()) throw specsteer::Error("give --set or --clear, not both");
    if (lo->clear || !lo->set.empty()) {
      std::vector<AdapterRef> refs;
      for (const auto& arg : lo->set) {
        const auto [file, scale] = specsteer::parse_lora_arg(arg);
        check_adapter_file(file);
        // Stored absolute, so generations started from any directory find it.
        refs.push_back({std::filesystem::absolute(file).lexically_normal().string(), scale});
      }
      Store store = Store::open(lo->db);
      store.set_adapters(lo->user, refs);
    }
    Store store = Store::open(lo->db, Store::Mode::ReadOnly);
    const auto refs = store.adapters(lo->user);
    if (lo->json) {
      json out = json::array();
      for (const auto& a : refs) out.push_back({{"path", a.path}, {"scale", a.scale}});
      std::cout << json{{"user", lo->user}, {"adapters", out}}.dump(2) << "\n";
      return;
    }
    if (refs.empty()) std::printf("user %s: no adapters\n", lo->user.c_str());
    for (const auto& a : refs) std::printf("%s:%g\n", a.path.c_str(), a.scale);
  });
});

}  // namespace
