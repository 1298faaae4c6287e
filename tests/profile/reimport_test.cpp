// Re-importing an entry whose record id is stored with other text replaces
// it (by id, per user and task); a version-1 database is upgraded on open;
// a database locked by another import says "locked ..., retry".
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/error.h"
#include "profile/profile.h"
#include "util.h"

namespace specsteer::profile {
namespace {

class Reimport : public test::DirTest {};

const char* kOriginal =
    R"({"name": "U1", "profile": [{"title": "Alpha paper", "abstract": "about alpha", "id": "r1"}, {"title": "Other", "abstract": "unrelated words", "id": "r2"}]})";
const char* kChanged =
    R"({"name": "U1", "profile": [{"title": "Alpha paper", "abstract": "concerning gamma", "id": "r1"}, {"title": "Other", "abstract": "unrelated words", "id": "r2"}]})";

// Entries that share a word with the query (search also fills up to k with
// unscored entries, as rank_bm25's top-n does).
std::vector<Entry> matching(const Store& store, const char* user, const char* query) {
  std::vector<Entry> out;
  for (auto& e : store.search(user, Task::Abstract, query))
    if (e.score != 0) out.push_back(std::move(e));
  return out;
}

void sql(sqlite3* db, const char* s) { ASSERT_EQ(sqlite3_exec(db, s, nullptr, nullptr, nullptr), SQLITE_OK) << s; }

}  // namespace

TEST_F(Reimport, AChangedRecordReplacesTheStoredOneById) {
  Store store = Store::open(db_);
  EXPECT_EQ(store.import_file(Task::Abstract, file("a.jsonl", kOriginal)).entries, 2u);
  const ImportReport r = store.import_file(Task::Abstract, file("b.jsonl", kChanged));
  EXPECT_EQ(r.replaced, 1u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(r.entries, 0u);
  EXPECT_EQ(store.stats().entries.at(Task::Abstract), 2u);
  const auto now = matching(store, "U1", "gamma");
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].fields.at("abstract"), "concerning gamma");
  EXPECT_EQ(now[0].fields.at("id"), "r1");
  // The old text is gone from the index too.
  EXPECT_TRUE(matching(store, "U1", "about").empty());
  // Again: nothing changes.
  const ImportReport again = store.import_file(Task::Abstract, file("c.jsonl", kChanged));
  EXPECT_EQ(again.replaced, 0u);
  EXPECT_EQ(again.duplicates, 2u);
}

TEST_F(Reimport, TheSameIdOfAnotherUserIsAnotherEntry) {
  Store store = Store::open(db_);
  store.import_file(Task::Abstract, file("a.jsonl", kOriginal));
  std::string other = kChanged;
  other.replace(other.find("U1"), 2, "U2");
  const ImportReport r = store.import_file(Task::Abstract, file("b.jsonl", other));
  EXPECT_EQ(r.replaced, 0u);
  EXPECT_EQ(r.entries, 2u);
  EXPECT_EQ(matching(store, "U1", "about").size(), 1u);
}

TEST_F(Reimport, AVersionOneDatabaseIsUpgradedAndReplacesByItsStoredIds) {
  {  // the version-1 schema, one entry whose fields hold id "r1"
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    sql(db,
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
        "CREATE TABLE entries(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),"
        " task TEXT NOT NULL, hash INTEGER NOT NULL, fields TEXT NOT NULL);"
        "CREATE INDEX entries_by_task ON entries(task, user_id, hash);");
    for (const char* t : {"abstract", "review", "writing", "lamp4", "lamp5", "lamp7"})
      sql(db, ("CREATE VIRTUAL TABLE fts_" + std::string(t) +
               " USING fts5(scope, body, content='', tokenize='unicode61 remove_diacritics 2')")
                  .c_str());
    sql(db,
        "INSERT INTO users(id, name) VALUES(1, 'U1');"
        "INSERT INTO entries(id, user_id, task, hash, fields) VALUES(1, 1, 'abstract', 0,"
        " '{\"abstract\":\"about alpha\",\"id\":\"r1\",\"title\":\"Alpha paper\"}');"
        "INSERT INTO fts_abstract(rowid, scope, body) VALUES(1, 'u1', 'Alpha paper\nabout alpha');"
        "PRAGMA user_version = 1;");
    sqlite3_close(db);
  }
  Store store = Store::open(db_);
  const ImportReport r = store.import_file(Task::Abstract, file("b.jsonl", kChanged));
  EXPECT_EQ(r.replaced, 1u);
  EXPECT_EQ(r.entries, 1u);  // r2 is new
  EXPECT_EQ(store.stats().entries.at(Task::Abstract), 2u);
  EXPECT_TRUE(matching(store, "U1", "about").empty());
  EXPECT_EQ(matching(store, "U1", "gamma").size(), 1u);
}

TEST_F(Reimport, ALockedDatabaseSaysLockedRetry) {
  { Store::open(db_).import_file(Task::Abstract, file("a.jsonl", kOriginal)); }
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &holder), SQLITE_OK);
  sql(holder, "BEGIN IMMEDIATE");  // another import in progress
  try {
    Store store = Store::open(db_);
    store.import_file(Task::Abstract, file("b.jsonl", kChanged));  // waits out the busy timeout
    ADD_FAILURE() << "imported into a locked database";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("locked"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("retry"), std::string::npos) << e.what();
  }
  sql(holder, "ROLLBACK");
  sqlite3_close(holder);
}

TEST_F(Reimport, ConcurrentFirstImportsNeverCallTheDatabaseForeign) {
  const std::string data = file("a.jsonl", kOriginal);
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < errors.size(); ++i)
    threads.emplace_back([&, i] {
      try {
        Store::open(db_).import_file(Task::Abstract, data);
      } catch (const Error& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    EXPECT_TRUE(e.empty() || (e.find("locked") != std::string::npos && e.find("retry") != std::string::npos)) << e;
  EXPECT_EQ(Store::open(db_, Store::Mode::ReadOnly).stats().entries.at(Task::Abstract), 2u);
}

}  // namespace specsteer::profile
