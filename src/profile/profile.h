#pragma once
// The device's private profile store: each user's history (LongLaMP / LaMP
// profile entries) in one SQLite file with an FTS5 index, BM25 top-k retrieval,
// and the paper's prompt templates (tables 13/14, data/templates.json).
//
// Only the device ever opens this store; nothing read from it is logged.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace specsteer::profile {

enum class Task { Abstract, Review, Writing, LaMP4, LaMP5, LaMP7 };
inline constexpr Task kAllTasks[] = {Task::Abstract, Task::Review, Task::Writing,
                                     Task::LaMP4,    Task::LaMP5,  Task::LaMP7};

// "abstract", "review", "writing", "lamp4", "lamp5", "lamp7" (case-insensitive;
// "lamp-4" and "LongLaMP-2"-style names are not accepted). Throws Error.
Task parse_task(std::string_view name);
std::string_view task_name(Task task);  // the key used in templates.json

// One profile entry: the task's fields (values as text: JSON numbers keep their
// source spelling, e.g. "5.0", "2019") and its retrieval score. score is
// -bm25() of FTS5, so higher means more relevant and scores are >= 0.
struct Entry {
  std::map<std::string, std::string> fields;
  double score = 0;
  Task task = Task::Abstract;
};

struct ImportReport {
  size_t records = 0;     // records that were valid and imported
  size_t entries = 0;     // profile entries newly stored
  size_t duplicates = 0;  // entries already in the store (re-import), not stored again
  size_t replaced = 0;    // entries whose "id" was stored with other text: replaced by this version
  size_t users = 0;       // users newly created
  size_t skipped = 0;     // bad records, each reported in errors
  std::vector<std::string> errors;  // "FILE: line L (record N): field F: what"; capped at 100
};

// A LoRA adapter of the user's SLM+ (a file on the device, llama.cpp's GGUF
// adapter format) and its scale: private like the profile, never sent.
struct AdapterRef {
  std::string path;
  double scale = 1.0;
};

struct StoreStats {
  size_t users = 0;
  std::map<Task, size_t> entries;        // per task (tasks with none are absent)
  std::map<Task, size_t> users_per_task; // users with at least one entry of the task
  uint64_t db_bytes = 0;                 // page_count * page_size
};

// One SQLite connection; use a Store from one thread at a time (open one per
// thread to search in parallel). Opening an existing file keeps its mode.
class Store {
 public:
  enum class Mode { Create, ReadOnly };
  // Create: opens or creates the file; a new file gets 0600 permissions.
  // ReadOnly: the file must exist. Throws Error naming the path.
  static Store open(const std::string& db_path, Mode mode = Mode::Create);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  // Imports a JSON array or JSONL file of records {user key, input, output,
  // profile: [entries]} streaming, one record in memory at a time. Re-importing
  // is idempotent (an entry equal to a stored one for the same user and task is
  // skipped); an entry with an "id" field replaces the stored entry of that id
  // (same user and task) when its text changed. A concurrent import holding
  // the database past the busy timeout gives Error "... locked ..., retry".
  // Bad records are skipped and reported. strict: all or nothing, in
  // one transaction; any bad record throws Error and nothing is written.
  ImportReport import_file(Task task, const std::string& data_path, bool strict = false);

  // Top-k entries of `user` for `task` by BM25 against `query` (terms are taken
  // from the text and quoted, never interpreted as FTS5 syntax). Best first;
  // ties by insertion order. Always min(k, the user's entries for the task)
  // entries: when fewer than k share a word with the query, the others follow
  // in profile (insertion) order with score 0, as rank_bm25's get_top_n (a
  // query without words gives the first k). An unknown user or k == 0 gives an
  // empty result. Throws Error for k < 0.
  std::vector<Entry> search(std::string_view user, Task task, std::string_view query, int k = 4) const;
  // Same over every task the user has entries for, merged by score.
  std::vector<Entry> search_all(std::string_view user, std::string_view query, int k = 4) const;

  bool has_user(std::string_view user) const;
  // User names in name order, at most `limit` (the device's own chat page
  // lists them; the store never leaves the device).
  std::vector<std::string> users(size_t limit = 1000) const;
  StoreStats stats() const;

  // The user's LoRA adapters: set_adapters replaces them (an empty list
  // removes them) and creates the user when new, so a user can be
  // personalized by an adapter alone. adapters() lists them in the order
  // given; none for an unknown user or a store written before adapters
  // existed. Throws Error for an empty path or a non-finite scale.
  void set_adapters(std::string_view user, const std::vector<AdapterRef>& adapters);
  std::vector<AdapterRef> adapters(std::string_view user) const;

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  std::vector<std::string> informative_words(Task task, const std::vector<std::string>& words) const;
  sqlite3* db_ = nullptr;
  mutable std::array<bool, 6> vocab_ready_{};  // temp fts5vocab table created per task
};

struct Prompts {
  std::string x;             // generic input: what the cloud sees
  std::string personalized;  // retrieved entries + x: only the device's SLM+ sees it
  std::vector<Entry> used;   // the entries in the personalized prompt, in order
};

// Table 13: personalized = header + join(entry_template per entry, separator)
// + footer + x; with no entries, personalized = empty_profile ("" by default) + x.
Prompts build_prompts(Task task, std::string_view x, const std::vector<Entry>& retrieved);
// Retrieves the top-k entries of `user` with query = x, then builds the prompts.
Prompts build_prompts(const Store& store, std::string_view user, Task task, std::string_view x, int k = 4);

// Table 14: the input x filled from a record's raw fields (input_template).
// Throws Error naming a field the template needs that is missing.
std::string input_from_fields(Task task, const std::map<std::string, std::string>& fields);

// The FTS5 MATCH operand for `text` restricted to nothing: each word of the
// text as a quoted FTS5 string, OR-joined (at most max_terms, duplicates kept,
// as in classic BM25 query term frequency). Empty when the text has no words.
// Exposed for tests; Store::search adds the user/task scope itself.
std::string fts5_terms(std::string_view text, size_t max_terms = 1024);

// The parsed template table (data/templates.json, embedded at build time).
struct TaskTemplate {
  std::string user_key;
  std::vector<std::string> entry_fields;   // fields kept per entry
  std::vector<std::string> search_fields;  // fields indexed for BM25
  std::vector<std::string> required;       // fields an entry must have (template + search)
  std::string input_template, entry_template, header, entry_separator, footer, empty_profile;
};
const TaskTemplate& task_template(Task task);
std::string_view templates_json();  // the embedded table, byte for byte

}  // namespace specsteer::profile
