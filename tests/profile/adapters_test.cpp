// The profile store maps a user to LoRA adapters of the SLM+ (`profile lora`):
// set replaces, empty clears, a new user is created, order and scales are
// kept, and a store written before adapters existed is upgraded on open for
// writing and reads as having none.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <limits>

#include "common/error.h"
#include "profile/profile.h"
#include "util.h"

namespace specsteer::profile {
namespace {

class Adapters : public test::DirTest {};

TEST_F(Adapters, SetReplacesKeepsOrderAndClears) {
  Store store = Store::open(db_);
  EXPECT_FALSE(store.has_user("alice"));
  EXPECT_TRUE(store.adapters("alice").empty());
  store.set_adapters("alice", {{"/a/style.gguf", 1.0}, {"/a/facts.gguf", 0.5}});
  EXPECT_TRUE(store.has_user("alice"));  // an adapter alone personalizes a user
  auto got = store.adapters("alice");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].path, "/a/style.gguf");
  EXPECT_EQ(got[0].scale, 1.0);
  EXPECT_EQ(got[1].path, "/a/facts.gguf");
  EXPECT_EQ(got[1].scale, 0.5);
  store.set_adapters("alice", {{"/a/new.gguf", 2.0}});
  got = store.adapters("alice");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "/a/new.gguf");
  EXPECT_TRUE(store.adapters("bob").empty());
  store.set_adapters("alice", {});
  EXPECT_TRUE(store.adapters("alice").empty());
  // Read back through a read-only connection too.
  store.set_adapters("bob", {{"/b.gguf", 0.25}});
  Store ro = Store::open(db_, Store::Mode::ReadOnly);
  ASSERT_EQ(ro.adapters("bob").size(), 1u);
  EXPECT_EQ(ro.adapters("bob")[0].scale, 0.25);
}

TEST_F(Adapters, BadValuesAreRefusedAndWriteNothing) {
  Store store = Store::open(db_);
  store.set_adapters("u", {{"/keep.gguf", 1.0}});
  EXPECT_THROW(store.set_adapters("u", {{"", 1.0}}), Error);
  EXPECT_THROW(store.set_adapters("u", {{"/x.gguf", std::numeric_limits<double>::quiet_NaN()}}), Error);
  EXPECT_THROW(store.set_adapters("u", {{"/x.gguf", std::numeric_limits<double>::infinity()}}), Error);
  EXPECT_THROW(store.set_adapters("", {{"/x.gguf", 1.0}}), Error);
  ASSERT_EQ(store.adapters("u").size(), 1u);
  EXPECT_EQ(store.adapters("u")[0].path, "/keep.gguf");
}

TEST_F(Adapters, AStoreFromBeforeAdaptersReadsAsNoneAndUpgradesForWriting) {
  {
    Store store = Store::open(db_);
    store.import_file(Task::Abstract, test::sample("abstract"));
  }
  // Make it a schema-2 store: no adapters table.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE adapters; PRAGMA user_version = 2;", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  {
    Store ro = Store::open(db_, Store::Mode::ReadOnly);
    EXPECT_TRUE(ro.adapters("anyone").empty());
  }
  Store rw = Store::open(db_);
  rw.set_adapters("anyone", {{"/p.gguf", 1.0}});
  EXPECT_EQ(rw.adapters("anyone").size(), 1u);
}

}  // namespace
}  // namespace specsteer::profile
