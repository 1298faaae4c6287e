// SQLite + FTS5 profile store.
//
// Schema (user_version 3; older versions are upgraded on open for writing and
// read as they are: version 1 lacks record_id, version 2 the adapters table):
//   users(id, name UNIQUE)
//   entries(id, user_id, task, hash, fields, record_id)  fields: JSON object,
//     values as text; record_id: the entry's own "id" field in the source
//     data, when it has one (re-importing that id with changed text replaces it)
//   adapters(user_id, position, path, scale)  the user's LoRA adapters of the
//     SLM+ (files on the device), applied in position order
//   fts_<task>(scope, body)  contentless FTS5, rowid = entries.id, one per task
//     so BM25 statistics are per task; scope holds the token "u<user id>" and
//     every query is `scope : "u<id>" AND body : (<quoted terms>)`, so a search
//     never leaves the user and task. body = the task's search_fields.
// BM25 statistics (N, document frequency, average length) are those of the
// whole task index: on a device that holds one user's profile they are exactly
// that user's; in a multi-user evaluation store they are shared across users.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "profile/profile.h"
#include "profile/record_reader.h"

namespace specsteer::profile {
namespace {

using json = nlohmann::json;
constexpr int kSchemaVersion = 3;
constexpr size_t kMaxReportedErrors = 100;
constexpr size_t kMaxQueryTerms = 1024;
constexpr const char* kAdaptersTable =
    "CREATE TABLE adapters(user_id INTEGER NOT NULL REFERENCES users(id), position INTEGER NOT NULL,"
    " path TEXT NOT NULL, scale REAL NOT NULL, PRIMARY KEY(user_id, position));";

// Another connection (a concurrent import) held the lock past the busy timeout.
bool is_locked(int rc) { return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED; }
const char* const kLockedRetry = "locked by another process (a concurrent import?), retry";

[[noreturn]] void sql_fail(sqlite3* db, const std::string& what) {
  // sqlite's messages name tables and constraints, never stored values.
  if (db && is_locked(sqlite3_extended_errcode(db))) throw Error(std::string("profile database: ") + kLockedRetry);
  throw Error("profile database: " + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

void exec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg); rc != SQLITE_OK) {
    std::string m = msg ? msg : sqlite3_errmsg(db);
    sqlite3_free(msg);
    if (is_locked(rc)) throw Error(std::string("profile database: ") + kLockedRetry);
    throw Error(std::string("profile database: ") + m);
  }
}

class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK) sql_fail(db, "prepare");
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, std::string_view v) {
    if (v.size() > static_cast<size_t>(INT_MAX)) throw Error("profile database: value too large");
    if (sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK)
      sql_fail(db_, "bind");
    return *this;
  }
  Stmt& bind(int i, double v) {
    if (sqlite3_bind_double(s_, i, v) != SQLITE_OK) sql_fail(db_, "bind");
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    if (sqlite3_bind_int64(s_, i, v) != SQLITE_OK) sql_fail(db_, "bind");
    return *this;
  }
  // true: a row is available; false: done.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    sql_fail(db_, "step");
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  double f64(int col) const { return sqlite3_column_double(s_, col); }
  std::string text(int col) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

// Rolls back unless committed, so an exception mid-import leaves nothing.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void commit() {
    exec(db_, "COMMIT");
    done_ = true;
  }
  void rollback() {
    exec(db_, "ROLLBACK");
    done_ = true;
  }

 private:
  sqlite3* db_;
  bool done_ = false;
};

std::string fts_table(Task t) { return "fts_" + std::string(task_name(t)); }
std::string scope_token(int64_t user_id) {
  std::string s = "u";  // (not "u" + to_string: GCC 12 warns a false -Wrestrict)
  s += std::to_string(user_id);
  return s;
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// --- query terms -----------------------------------------------------------

// Decodes one UTF-8 code point at s[i]; returns its length (1 for a bad byte,
// reported as U+FFFD so it acts as a separator).
size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp) {
  auto b = static_cast<unsigned char>(s[i]);
  size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    cp = 0xFFFD;
    return 1;
  }
  cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if ((c >> 6) != 2) {
      cp = 0xFFFD;
      return 1;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  return len;
}

// Word characters as FTS5's unicode61 tokenizer sees them, closely enough:
// ASCII letters and digits, and non-ASCII code points except common
// punctuation, symbols and spaces. A mismatch only turns one term into a
// quoted phrase; it can never produce query syntax.
bool is_word_cp(uint32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  if (cp >= 0x80 && cp <= 0xBF) return cp == 0xAA || cp == 0xB5 || cp == 0xBA;  // C1, Latin-1 punctuation
  if (cp == 0xD7 || cp == 0xF7) return false;                                   // x and divide signs
  if (cp >= 0x2000 && cp <= 0x2BFF) return false;  // punctuation, symbols, arrows, math, dingbats
  if (cp >= 0x3000 && cp <= 0x303F) return false;  // CJK punctuation
  if (cp >= 0xFE30 && cp <= 0xFE4F) return false;
  if (cp >= 0xFF00 && cp <= 0xFF0F) return false;  // fullwidth punctuation
  if (cp == 0xFEFF || cp == 0xFFFD) return false;
  return true;
}

// --- record validation -------------------------------------------------------

struct ParsedRecord {
  std::string user;
  std::vector<std::map<std::string, std::string>> entries;
  std::vector<std::string> record_ids;  // per entry: its "id" field, "" when it has none
};

// Returns an error "field F: what" or "" when the record is usable.
std::string validate(const json& rec, Task task, ParsedRecord& out) {
  const TaskTemplate& t = task_template(task);
  if (!rec.is_object()) return "record is not a JSON object";
  std::string user_key = t.user_key;
  auto u = rec.find(user_key);
  // LaMP releases key records by "id"; the user-based split has one per user.
  if (u == rec.end() && task >= Task::LaMP4) u = rec.find(user_key = "id");
  if (u == rec.end()) return "field \"" + t.user_key + "\": missing (the user key)";
  if (!u->is_string()) return "field \"" + user_key + "\": must be a string or number";
  out.user = u->get<std::string>();
  if (out.user.empty()) return "field \"" + user_key + "\": empty";
  auto p = rec.find("profile");
  if (p == rec.end()) return "field \"profile\": missing";
  if (!p->is_array()) return "field \"profile\": must be a list";
  out.entries.clear();
  out.entries.reserve(p->size());
  out.record_ids.clear();
  for (size_t i = 0; i < p->size(); ++i) {
    const json& e = (*p)[i];
    std::string base = "field \"profile[" + std::to_string(i) + "]";
    if (!e.is_object()) return base + "\": not an object";
    std::map<std::string, std::string> fields;
    for (const auto& name : t.entry_fields) {
      auto f = e.find(name);
      bool required = std::find(t.required.begin(), t.required.end(), name) != t.required.end();
      if (f == e.end()) {
        if (required) return base + "." + name + "\": missing";
        continue;
      }
      if (!f->is_string()) return base + "." + name + "\": must be a string or number";
      fields[name] = f->get<std::string>();
    }
    out.entries.push_back(std::move(fields));
    const auto id = e.find("id");
    out.record_ids.push_back(id != e.end() && id->is_string() ? id->get<std::string>() : std::string());
  }
  return {};
}

}  // namespace

namespace {

std::vector<std::string> query_words(std::string_view text, size_t max_terms) {
  std::vector<std::string> words;
  std::string term;
  auto flush = [&] {
    if (!term.empty() && words.size() < max_terms) words.push_back(term);
    term.clear();
  };
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    size_t len = decode_utf8(text, i, cp);
    if (is_word_cp(cp))
      term.append(text.substr(i, len));
    else
      flush();
    i += len;
  }
  flush();
  return words;
}

std::string quote_or(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += " OR ";
    out += '"';
    for (char c : w) {
      if (c == '"') out += '"';  // FTS5 string escape; words never hold '"', kept for safety
      out += c;
    }
    out += '"';
  }
  return out;
}

}  // namespace

std::string fts5_terms(std::string_view text, size_t max_terms) { return quote_or(query_words(text, max_terms)); }

Store::Store(Store&& o) noexcept : db_(o.db_), vocab_ready_(o.vocab_ready_) { o.db_ = nullptr; }
Store& Store::operator=(Store&& o) noexcept {
  if (this != &o) {
    if (db_) sqlite3_close_v2(db_);
    db_ = o.db_;
    vocab_ready_ = o.vocab_ready_;
    o.db_ = nullptr;
  }
  return *this;
}
Store::~Store() {
  if (db_) sqlite3_close_v2(db_);
}

Store Store::open(const std::string& db_path, Mode mode) {
  if (db_path.empty()) throw Error("profile database: empty path");
  if (mode == Mode::Create) {
    // Create the file ourselves so it is owner-only from its first byte; SQLite
    // gives its journal files the database file's permissions.
    int fd = ::open(db_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      int rc = ::fchmod(fd, 0600);  // independent of the umask
      int err = errno;
      ::close(fd);
      if (rc != 0) throw Error(db_path + ": cannot set permissions: " + std::strerror(err));
    } else if (errno != EEXIST) {
      throw Error(db_path + ": cannot create profile database: " + std::strerror(errno));
    }
  }
  sqlite3* db = nullptr;
  int flags = mode == Mode::Create ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
  int rc = sqlite3_open_v2(db_path.c_str(), &db, flags, nullptr);
  Store store(db);  // closes db on any throw below
  if (rc != SQLITE_OK) throw Error(db_path + ": cannot open profile database: " + sqlite3_errstr(rc));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);

  auto read_version = [&] {
    try {
      Stmt v(db, "PRAGMA user_version");
      return v.step() ? v.i64(0) : int64_t{0};
    } catch (const Error&) {
      if (is_locked(sqlite3_extended_errcode(db))) throw Error(db_path + ": profile database " + kLockedRetry);
      throw Error(db_path + ": not a profile database (" + sqlite3_errmsg(db) + ")");
    }
  };
  int64_t version = read_version();
  exec(db, "PRAGMA foreign_keys = ON");
  if (version > kSchemaVersion)
    throw Error(db_path + ": profile database schema version " + std::to_string(version) +
                " is newer than this build supports (" + std::to_string(kSchemaVersion) + ")");
  if (version == kSchemaVersion || (mode == Mode::ReadOnly && version > 0)) return store;  // (v1/v2 read as v3)
  if (version == 0 && mode == Mode::ReadOnly) {
    Stmt n(db, "SELECT count(*) FROM sqlite_schema");
    n.step();
    if (n.i64(0) != 0) throw Error(db_path + ": not a profile database (it holds other tables)");
    throw Error(db_path + ": profile database is empty (import data first)");
  }
  // Create or upgrade under the write lock, deciding again inside it: a
  // concurrent first import may have created the schema meanwhile.
  Transaction tx(db);
  version = read_version();
  if (version == 0) {
    Stmt n(db, "SELECT count(*) FROM sqlite_schema");
    n.step();
    if (n.i64(0) != 0) throw Error(db_path + ": not a profile database (it holds other tables)");
    exec(db,
         "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
         "CREATE TABLE entries(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),"
         " task TEXT NOT NULL, hash INTEGER NOT NULL, fields TEXT NOT NULL, record_id TEXT);"
         "CREATE INDEX entries_by_task ON entries(task, user_id, hash);"
         "CREATE INDEX entries_by_record ON entries(user_id, task, record_id) WHERE record_id IS NOT NULL;");
    exec(db, kAdaptersTable);
    for (Task t : kAllTasks) {
      std::string sql = "CREATE VIRTUAL TABLE " + fts_table(t) +
                        " USING fts5(scope, body, content='', tokenize='unicode61 remove_diacritics 2')";
      exec(db, sql.c_str());
    }
  } else if (version == 1) {
    // Entries imported before record ids were kept: the abstract task stores
    // its "id" among the fields, the others' ids were not kept.
    exec(db,
         "ALTER TABLE entries ADD COLUMN record_id TEXT;"
         "UPDATE entries SET record_id = json_extract(fields, '$.id') WHERE json_type(fields, '$.id') = 'text';"
         "CREATE INDEX entries_by_record ON entries(user_id, task, record_id) WHERE record_id IS NOT NULL;");
  }
  if (version == 1 || version == 2) exec(db, kAdaptersTable);
  if (version < kSchemaVersion) exec(db, ("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
  tx.commit();
  return store;
}

ImportReport Store::import_file(Task task, const std::string& data_path, bool strict) {
  const TaskTemplate& t = task_template(task);
  const std::string tname(task_name(task));
  ImportReport rep;
  Transaction tx(db_);
  Stmt user_ins(db_, "INSERT INTO users(name) VALUES(?1) ON CONFLICT(name) DO NOTHING");
  Stmt user_sel(db_, "SELECT id FROM users WHERE name = ?1");
  Stmt dup_sel(db_, "SELECT fields FROM entries WHERE user_id = ?1 AND task = ?2 AND hash = ?3");
  Stmt ent_ins(db_, "INSERT INTO entries(user_id, task, hash, fields, record_id) VALUES(?1, ?2, ?3, ?4, ?5)");
  Stmt fts_ins(db_, "INSERT INTO " + fts_table(task) + "(rowid, scope, body) VALUES(?1, ?2, ?3)");
  Stmt rec_sel(db_, "SELECT id, fields FROM entries WHERE user_id = ?1 AND task = ?2 AND record_id = ?3");
  Stmt ent_upd(db_, "UPDATE entries SET hash = ?2, fields = ?3 WHERE id = ?1");
  // A contentless FTS5 row is deleted by restating what was indexed.
  Stmt fts_del(db_, "INSERT INTO " + fts_table(task) + "(" + fts_table(task) +
                        ", rowid, scope, body) VALUES('delete', ?1, ?2, ?3)");
  auto search_body = [&](const std::map<std::string, std::string>& fields) {
    std::string body;
    for (const auto& f : t.search_fields) {
      if (!body.empty()) body += '\n';
      auto it = fields.find(f);
      if (it != fields.end()) body += it->second;
    }
    return body;
  };
  std::unordered_map<std::string, int64_t> user_ids;  // cache, bounded below

  auto report = [&](const std::string& msg) {
    std::string full = data_path + ": " + msg;
    if (strict) throw Error(full + " (--strict: nothing imported)");
    if (rep.errors.size() < kMaxReportedErrors) {
      rep.errors.push_back(std::move(full));
    } else if (rep.errors.size() == kMaxReportedErrors) {
      rep.errors.push_back(data_path + ": further errors not listed");
    }
  };

  auto user_id = [&](const std::string& name) -> int64_t {
    if (auto it = user_ids.find(name); it != user_ids.end()) return it->second;
    user_ins.bind(1, name);
    user_ins.step();
    rep.users += static_cast<size_t>(sqlite3_changes(db_));
    user_ins.reset();
    user_sel.bind(1, name);
    if (!user_sel.step()) sql_fail(db_, "user lookup");
    int64_t id = user_sel.i64(0);
    user_sel.reset();
    if (user_ids.size() > 100000) user_ids.clear();
    user_ids.emplace(name, id);
    return id;
  };

  ParsedRecord rec;
  json doc;
  std::string err;
  detail::read_records(data_path, [&](const detail::RawRecord& raw) {
    if (!raw.error.empty()) {
      if (raw.is_record) ++rep.skipped;
      report(raw.where + ": " + raw.error);
      return;
    }
    size_t err_line = raw.line;
    if (!detail::parse_record(raw.text, raw.line, doc, err, err_line)) {
      ++rep.skipped;
      report(detail::where_at(raw, err_line) + ": " + err);
      return;
    }
    if (std::string bad = validate(doc, task, rec); !bad.empty()) {
      ++rep.skipped;
      report(raw.where + ": " + bad);
      return;
    }
    int64_t uid = user_id(rec.user);
    std::string scope = scope_token(uid);
    for (size_t ei = 0; ei < rec.entries.size(); ++ei) {
      const auto& fields = rec.entries[ei];
      const std::string& record_id = rec.record_ids[ei];
      std::string canon = json(fields).dump();  // std::map: sorted keys, deterministic
      auto hash = std::bit_cast<int64_t>(fnv1a(canon));
      if (!record_id.empty()) {  // an entry with an id: the stored one of that id is it
        rec_sel.bind(1, uid).bind(2, tname).bind(3, record_id);
        const bool stored = rec_sel.step();
        const int64_t id = stored ? rec_sel.i64(0) : 0;
        const std::string old = stored ? rec_sel.text(1) : std::string();
        rec_sel.reset();
        if (stored && old == canon) {
          ++rep.duplicates;
          continue;
        }
        if (stored) {
          const auto old_fields = json::parse(old).get<std::map<std::string, std::string>>();
          fts_del.bind(1, id).bind(2, scope).bind(3, search_body(old_fields));
          fts_del.step();
          fts_del.reset();
          ent_upd.bind(1, id).bind(2, hash).bind(3, canon);
          ent_upd.step();
          ent_upd.reset();
          fts_ins.bind(1, id).bind(2, scope).bind(3, search_body(fields));
          fts_ins.step();
          fts_ins.reset();
          ++rep.replaced;
          continue;
        }
      }
      dup_sel.bind(1, uid).bind(2, tname).bind(3, hash);
      bool dup = false;
      while (!dup && dup_sel.step()) dup = dup_sel.text(0) == canon;
      dup_sel.reset();
      if (dup) {
        ++rep.duplicates;
        continue;
      }
      ent_ins.bind(1, uid).bind(2, tname).bind(3, hash).bind(4, canon);
      if (!record_id.empty()) ent_ins.bind(5, record_id);
      ent_ins.step();
      ent_ins.reset();
      int64_t id = sqlite3_last_insert_rowid(db_);
      fts_ins.bind(1, id).bind(2, scope).bind(3, search_body(fields));
      fts_ins.step();
      fts_ins.reset();
      ++rep.entries;
    }
    ++rep.records;
  });
  tx.commit();
  return rep;
}

// Speed-up for large profiles: FTS5's bm25 gives a term found in at least
// half of the task's entries an idf of 1e-6, so such a term barely changes any
// score but makes nearly every entry a match that must be scored. search()
// drops those terms (ASCII words only; others are not case-folded here) and
// falls back to the full query when fewer than k entries match, so the result
// set is the same; scores differ by about 1e-6 per dropped term.
// Below kPruneMinEntries the df lookups cost more than scoring every match.
std::vector<std::string> Store::informative_words(Task task, const std::vector<std::string>& words) const {
  constexpr int64_t kPruneMinEntries = 2000;
  int64_t n_rows;
  {
    Stmt n(db_, "SELECT count(*) FROM entries WHERE task = ?1");
    n.bind(1, task_name(task));
    n.step();
    n_rows = n.i64(0);
  }
  if (n_rows < kPruneMinEntries) return words;
  const std::string vocab = "temp.vocab_" + std::string(task_name(task));
  auto& ready = vocab_ready_[static_cast<size_t>(task)];
  if (!ready) {
    exec(db_, ("CREATE VIRTUAL TABLE IF NOT EXISTS " + vocab + " USING fts5vocab(main, " + fts_table(task) + ", 'row')")
                  .c_str());
    ready = true;
  }
  Stmt df(db_, "SELECT doc FROM " + vocab + " WHERE term = ?1");
  std::map<std::string, bool> common;
  std::vector<std::string> kept;
  for (const auto& w : words) {
    if (std::any_of(w.begin(), w.end(), [](unsigned char c) { return c >= 0x80; })) {
      kept.push_back(w);
      continue;
    }
    std::string folded = w;
    std::transform(folded.begin(), folded.end(), folded.begin(), [](unsigned char c) { return std::tolower(c); });
    auto it = common.find(folded);
    if (it == common.end()) {
      df.bind(1, folded);
      int64_t d = df.step() ? df.i64(0) : 0;
      df.reset();
      it = common.emplace(folded, 2 * d >= n_rows).first;
    }
    if (!it->second) kept.push_back(w);
  }
  return kept;
}

bool Store::has_user(std::string_view user) const {
  Stmt s(db_, "SELECT 1 FROM users WHERE name = ?1");
  s.bind(1, user);
  return s.step();
}

std::vector<std::string> Store::users(size_t limit) const {
  std::vector<std::string> out;
  Stmt s(db_, "SELECT name FROM users ORDER BY name LIMIT ?1");
  s.bind(1, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  while (s.step()) out.push_back(s.text(0));
  return out;
}

std::vector<Entry> Store::search(std::string_view user, Task task, std::string_view query, int k) const {
  if (k < 0) throw Error("profile search: k must be >= 0 (got " + std::to_string(k) + ")");
  std::vector<Entry> out;
  std::vector<std::string> words = query_words(query, kMaxQueryTerms);
  if (k == 0) return out;
  int64_t uid;
  {
    Stmt s(db_, "SELECT id FROM users WHERE name = ?1");
    s.bind(1, user);
    if (!s.step()) return out;
    uid = s.i64(0);
  }
  const std::string table = fts_table(task);
  // Rank inside the FTS table first and join only the k winners: joining every
  // match before sorting costs a row lookup per match (2x slower at 100k).
  Stmt s(db_, "SELECT e.fields, t.r, e.id FROM (SELECT rowid AS id, bm25(" + table + ", 0.0, 1.0) AS r FROM " +
                  table + " WHERE " + table + " MATCH ?1 ORDER BY r, rowid LIMIT ?2) t JOIN entries e ON e.id = t.id" +
                  " ORDER BY t.r, e.id");
  std::vector<int64_t> ids;  // of the entries in `out`
  auto add = [&](Stmt& st, double score) {
    Entry e;
    e.task = task;
    e.score = score;
    json fields = json::parse(st.text(0), nullptr, /*allow_exceptions=*/false);
    if (!fields.is_object()) throw Error("profile database: corrupt entry (fields are not a JSON object)");
    for (auto it = fields.begin(); it != fields.end(); ++it)
      if (it->is_string()) e.fields[it.key()] = it->get<std::string>();
    out.push_back(std::move(e));
  };
  auto run = [&](const std::vector<std::string>& terms) {
    out.clear();
    ids.clear();
    // The only user text in the expression is inside the quoted terms.
    s.bind(1, "scope : \"" + scope_token(uid) + "\" AND body : (" + quote_or(terms) + ")").bind(2, int64_t{k});
    while (s.step()) {
      add(s, -s.f64(1));
      ids.push_back(s.i64(2));
    }
    s.reset();
  };
  bool done = false;
  if (!words.empty()) {
    std::vector<std::string> informative = informative_words(task, words);
    if (!informative.empty() && informative.size() < words.size()) {
      run(informative);
      done = out.size() == static_cast<size_t>(k);
    }
    if (!done) run(words);
  }
  // Fewer matches than k: entries that share no word with the query follow
  // the scored ones in profile (insertion) order with score 0, as rank_bm25's
  // get_top_n returns n documents whatever their scores, so a prompt always
  // holds k entries when the user has k.
  if (out.size() < static_cast<size_t>(k)) {
    std::sort(ids.begin(), ids.end());
    Stmt rest(db_, "SELECT fields, id FROM entries WHERE user_id = ?1 AND task = ?2 ORDER BY id");
    rest.bind(1, uid).bind(2, task_name(task));
    while (out.size() < static_cast<size_t>(k) && rest.step())
      if (!std::binary_search(ids.begin(), ids.end(), rest.i64(1))) add(rest, 0.0);
  }
  return out;
}

std::vector<Entry> Store::search_all(std::string_view user, std::string_view query, int k) const {
  if (k < 0) throw Error("profile search: k must be >= 0 (got " + std::to_string(k) + ")");
  std::vector<Entry> all;
  Stmt s(db_, "SELECT DISTINCT e.task FROM entries e JOIN users u ON u.id = e.user_id WHERE u.name = ?1");
  s.bind(1, user);
  std::vector<Task> tasks;
  while (s.step()) tasks.push_back(parse_task(s.text(0)));
  std::sort(tasks.begin(), tasks.end());
  for (Task t : tasks) {
    auto part = search(user, t, query, k);
    all.insert(all.end(), part.begin(), part.end());
  }
  std::stable_sort(all.begin(), all.end(), [](const Entry& a, const Entry& b) { return a.score > b.score; });
  if (all.size() > static_cast<size_t>(k)) all.resize(static_cast<size_t>(k));
  return all;
}

StoreStats Store::stats() const {
  StoreStats st;
  {
    Stmt s(db_, "SELECT count(*) FROM users");
    s.step();
    st.users = static_cast<size_t>(s.i64(0));
  }
  {
    Stmt s(db_, "SELECT task, count(*), count(DISTINCT user_id) FROM entries GROUP BY task");
    while (s.step()) {
      Task t = parse_task(s.text(0));
      st.entries[t] = static_cast<size_t>(s.i64(1));
      st.users_per_task[t] = static_cast<size_t>(s.i64(2));
    }
  }
  Stmt pc(db_, "PRAGMA page_count"), ps(db_, "PRAGMA page_size");
  pc.step();
  ps.step();
  st.db_bytes = static_cast<uint64_t>(pc.i64(0)) * static_cast<uint64_t>(ps.i64(0));
  return st;
}

void Store::set_adapters(std::string_view user, const std::vector<AdapterRef>& adapters) {
  if (user.empty()) throw Error("profile adapters: the user id is empty");
  for (const auto& a : adapters) {
    if (a.path.empty()) throw Error("profile adapters: an adapter path is empty");
    if (!std::isfinite(a.scale)) throw Error("profile adapters: the scale of '" + a.path + "' is not finite");
  }
  Transaction tx(db_);
  {
    Stmt ins(db_, "INSERT INTO users(name) VALUES(?1) ON CONFLICT(name) DO NOTHING");
    ins.bind(1, user);
    ins.step();
  }
  int64_t uid;
  {
    Stmt sel(db_, "SELECT id FROM users WHERE name = ?1");
    sel.bind(1, user);
    if (!sel.step()) throw Error("profile adapters: the user could not be created");
    uid = sel.i64(0);
  }
  {
    Stmt del(db_, "DELETE FROM adapters WHERE user_id = ?1");
    del.bind(1, uid);
    del.step();
  }
  Stmt ins(db_, "INSERT INTO adapters(user_id, position, path, scale) VALUES(?1, ?2, ?3, ?4)");
  for (size_t i = 0; i < adapters.size(); ++i) {
    ins.bind(1, uid).bind(2, static_cast<int64_t>(i)).bind(3, adapters[i].path).bind(4, adapters[i].scale);
    ins.step();
    ins.reset();
  }
  tx.commit();
}

std::vector<AdapterRef> Store::adapters(std::string_view user) const {
  std::vector<AdapterRef> out;
  {
    // A store written before adapters existed (schema 1 or 2, opened read-only) has none.
    Stmt t(db_, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'adapters'");
    if (!t.step()) return out;
  }
  Stmt s(db_,
         "SELECT a.path, a.scale FROM adapters a JOIN users u ON u.id = a.user_id WHERE u.name = ?1 "
         "ORDER BY a.position");
  s.bind(1, user);
  while (s.step()) out.push_back({s.text(0), s.f64(1)});
  return out;
}

}  // namespace specsteer::profile
