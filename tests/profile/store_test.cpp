// The SQLite/FTS5 store: import, idempotence, ranking on hand-checked
// queries, hostile query strings, malformed input, permissions.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "common/error.h"
#include "profile/profile.h"
#include "util.h"

namespace specsteer::profile {
namespace {

std::vector<std::string> titles(const std::vector<Entry>& es, const char* field = "title") {
  std::vector<std::string> out;
  for (const auto& e : es) out.push_back(e.fields.at(field));
  return out;
}

// The entries that share a word with the query (the rest fill up to k with score 0).
std::vector<Entry> scored(const std::vector<Entry>& es) {
  std::vector<Entry> out;
  for (const auto& e : es)
    if (e.score > 0) out.push_back(e);
  return out;
}

bool mentions(const std::vector<std::string>& errors, const std::string& a, const std::string& b = "") {
  return std::any_of(errors.begin(), errors.end(), [&](const std::string& e) {
    return e.find(a) != std::string::npos && e.find(b) != std::string::npos;
  });
}

class SampleStore : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::fresh_dir();
    store_ = std::make_unique<Store>(Store::open((dir_ / "p.db").string()));
    for (Task t : {Task::Abstract, Task::Review, Task::Writing})
      reports_.push_back(store_->import_file(t, test::sample(std::string(task_name(t)))));
  }
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  std::vector<ImportReport> reports_;
};

TEST_F(SampleStore, ImportCounts) {
  // abstract: 4 records, 22 profile entries of which 6 repeat (Mira has two
  // records with the same profile); 3 distinct users.
  EXPECT_EQ(reports_[0].records, 4u);
  EXPECT_EQ(reports_[0].entries, 16u);
  EXPECT_EQ(reports_[0].duplicates, 6u);
  EXPECT_EQ(reports_[0].users, 3u);
  EXPECT_EQ(reports_[1].entries, 14u);
  EXPECT_EQ(reports_[2].entries, 12u);
  for (const auto& r : reports_) {
    EXPECT_EQ(r.skipped, 0u);
    EXPECT_TRUE(r.errors.empty());
  }
  StoreStats s = store_->stats();
  EXPECT_EQ(s.users, 9u);
  EXPECT_EQ(s.entries.at(Task::Abstract), 16u);
  EXPECT_EQ(s.entries.at(Task::Review), 14u);
  EXPECT_EQ(s.entries.at(Task::Writing), 12u);
  EXPECT_EQ(s.users_per_task.at(Task::Review), 3u);
  EXPECT_EQ(s.entries.count(Task::LaMP4), 0u);
  EXPECT_GT(s.db_bytes, 0u);
}

TEST_F(SampleStore, ReimportIsIdempotent) {
  StoreStats before = store_->stats();
  ImportReport again = store_->import_file(Task::Abstract, test::sample("abstract"));
  EXPECT_EQ(again.records, 4u);
  EXPECT_EQ(again.entries, 0u);
  EXPECT_EQ(again.duplicates, 22u);
  EXPECT_EQ(again.users, 0u);
  StoreStats after = store_->stats();
  EXPECT_EQ(after.users, before.users);
  EXPECT_EQ(after.entries, before.entries);
  // Search sees each entry once: one match, then Mira's other five abstracts.
  auto hits = store_->search("Mira Okafor", Task::Abstract, "decoding", 10);
  EXPECT_EQ(hits.size(), 6u);
  std::set<std::string> ids;
  for (const auto& e : hits) ids.insert(e.fields.at("id"));
  EXPECT_EQ(ids.size(), 6u);
  EXPECT_EQ(scored(hits).size(), 1u);
}

TEST_F(SampleStore, NumbersKeepTheirText) {
  auto r = store_->search("A3M9XW2PL5QE7", Task::Review, "water bottle leaked", 1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].fields.at("overall"), "1.0");
  auto a = store_->search("Mira Okafor", Task::Abstract, "speculative", 1);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].fields.at("year"), "2021");
  EXPECT_EQ(a[0].fields.at("id"), "a101");
}

// Hand-checked: each expected first hit is the only entry of that user holding
// the query's rare words.
TEST_F(SampleStore, RankingOnHandCheckedQueries) {
  EXPECT_EQ(titles(scored(store_->search("Mira Okafor", Task::Abstract, "speculative decoding draft"))),
            std::vector<std::string>{"Speculative Decoding with Draft Model Ensembles"});
  // "molecular", "property", "prediction" all occur in the MPNN paper; only
  // "prediction(s)" occurs in the link prediction and explanation papers,
  // and the explanation paper says "predictions", a different token.
  EXPECT_EQ(titles(scored(store_->search("Tomasz Wierzbicki", Task::Abstract, "molecular property prediction"))),
            (std::vector<std::string>{"Message Passing Neural Networks for Molecular Property Prediction",
                                      "Scalable Link Prediction on Billion-Edge Graphs",
                                      "Explaining Graph Neural Network Predictions with Subgraph Masks"}));
  EXPECT_EQ(titles(scored(store_->search("A3M9XW2PL5QE7", Task::Review, "water bottle leaked")), "description"),
            std::vector<std::string>{"Insulated stainless water bottle 32 oz"});
  auto bake = scored(store_->search("quietbaker", Task::Writing, "croissant dough"));
  ASSERT_EQ(bake.size(), 2u);  // "dough" also occurs in the proofing post
  EXPECT_EQ(bake[0].fields.at("summary"), "First attempt at laminated croissant dough");
  EXPECT_EQ(bake[1].fields.at("summary"), "Proofing bread in a cold apartment in winter");
  EXPECT_GT(bake[0].score, bake[1].score);

  // Full task inputs as queries (query = x): the closest past item first.
  auto coffee = store_->search("A2KQ7R4VN8TZ1", Task::Review,
                               "Generate a review text written by a reviewer who has a given an overall rating of "
                               "\"4.0\" for a product with description \"Conical burr coffee grinder with timer\". The "
                               "summary of the review text is \"Great grind, noisy motor\".");
  ASSERT_EQ(coffee.size(), 4u);
  EXPECT_EQ(coffee[0].fields.at("description"), "Stainless steel burr coffee grinder with 18 grind settings");
  for (size_t i = 1; i < coffee.size(); ++i) EXPECT_GE(coffee[i - 1].score, coffee[i].score);
  auto plants = store_->search("pixelgardener", Task::Writing,
                               "Generate the content for a reddit post \"My fiddle leaf fig is dropping leaves under "
                               "a grow light\"");
  ASSERT_FALSE(plants.empty());
  EXPECT_EQ(plants[0].fields.at("summary"), "Grow lights for a north-facing apartment");
}

TEST_F(SampleStore, SearchStaysInsideUserAndTask) {
  // No shared word: Lucia's own entries fill the k places, unscored.
  auto none = store_->search("Lucia Ferreira", Task::Abstract, "speculative decoding draft");
  EXPECT_EQ(none.size(), 4u);
  EXPECT_TRUE(scored(none).empty());
  for (const auto& e : none) EXPECT_EQ(e.fields.at("id")[0], 'c');
  EXPECT_TRUE(store_->search("Mira Okafor", Task::Review, "speculative decoding draft").empty());
  EXPECT_TRUE(store_->search("nobody", Task::Abstract, "speculative").empty());
  EXPECT_FALSE(store_->has_user("nobody"));
  EXPECT_TRUE(store_->has_user("Mira Okafor"));
  // Every hit of a broad query belongs to the user.
  auto lucia = store_->search("Lucia Ferreira", Task::Abstract, "federated learning the of a with models", 50);
  EXPECT_EQ(lucia.size(), 5u);
  for (const auto& e : lucia) EXPECT_EQ(e.fields.at("id")[0], 'c');
  // All tasks of a user: Mira only has abstracts.
  auto all = store_->search_all("Mira Okafor", "device language models", 10);
  ASSERT_FALSE(all.empty());
  for (const auto& e : all) EXPECT_EQ(e.task, Task::Abstract);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GE(all[i - 1].score, all[i].score);
}

TEST_F(SampleStore, KSemantics) {
  EXPECT_TRUE(store_->search("Mira Okafor", Task::Abstract, "models", 0).empty());
  EXPECT_THROW(store_->search("Mira Okafor", Task::Abstract, "models", -1), Error);
  // Every one of Mira's six abstracts contains "we" or "the".
  EXPECT_EQ(store_->search("Mira Okafor", Task::Abstract, "we the", 100).size(), 6u);
  EXPECT_EQ(store_->search("Mira Okafor", Task::Abstract, "we the").size(), 4u);  // default k = 4
}

// Issue 14: top-k always returns k entries when the user has k (rank_bm25's
// get_top_n): the scored ones first, then the others in profile order.
TEST_F(SampleStore, TopKFillsWithUnmatchedEntriesInProfileOrder) {
  auto all = store_->search("Mira Okafor", Task::Abstract, "", 100);  // profile order
  ASSERT_EQ(all.size(), 6u);
  auto hits = store_->search("Mira Okafor", Task::Abstract, "speculative decoding draft", 4);
  ASSERT_EQ(hits.size(), 4u);
  ASSERT_EQ(scored(hits).size(), 1u);  // one abstract shares words with the query
  EXPECT_EQ(hits[0].fields.at("title"), "Speculative Decoding with Draft Model Ensembles");
  std::vector<std::string> rest;
  for (const auto& e : all)
    if (e.fields.at("title") != hits[0].fields.at("title")) rest.push_back(e.fields.at("title"));
  rest.resize(3);
  EXPECT_EQ(titles({hits.begin() + 1, hits.end()}), rest);
  for (size_t i = 1; i < hits.size(); ++i) EXPECT_EQ(hits[i].score, 0.0);
  // Fewer only when the profile is smaller than k; each entry once.
  auto everything = store_->search("Mira Okafor", Task::Abstract, "speculative decoding draft", 50);
  EXPECT_EQ(everything.size(), 6u);
  std::set<std::string> unique;
  for (const auto& e : everything) unique.insert(e.fields.at("title"));
  EXPECT_EQ(unique.size(), 6u);
  // The personalized prompt holds k entries too.
  auto p = build_prompts(*store_, "Mira Okafor", Task::Abstract, "speculative decoding draft", 4);
  EXPECT_EQ(p.used.size(), 4u);
}

TEST_F(SampleStore, HostileQueriesNeitherFailNorWiden) {
  const std::vector<std::string> hostile = {
      "",
      "   \t\n",
      "!!!???...,,,;;;",
      "\"",
      "\"\"\"",
      "*",
      "speculative*",
      "NEAR(speculative decoding, 2)",
      "NEAR",
      "OR",
      "AND",
      "NOT",
      "speculative OR scope : \"u1\"",
      "scope : u1",
      "{scope body} : u1 OR u2 OR u3",
      "title:speculative",
      "body:federated",
      "^speculative",
      "((((speculative",
      "decoding))))",
      "\"unbalanced quote speculative",
      "- federated + learning",
      "a\"b\"c",
      "rowid = 1; DROP TABLE entries; --",
      "' OR 1=1 --",
      std::string("nul\0byte speculative", 20),
      "\xff\xfe\xfd invalid utf8 \xc3",
      "caf\xc3\xa9\xe2\x80\x94" "decoding",
      std::string(100000, '('),
      std::string(20000, 'x') + " OR " + std::string(20000, '"'),
  };
  for (const auto& q : hostile) {
    SCOPED_TRACE(q.substr(0, 60));
    std::vector<Entry> lucia;
    ASSERT_NO_THROW(lucia = store_->search("Lucia Ferreira", Task::Abstract, q, 50));
    for (const auto& e : lucia) EXPECT_EQ(e.fields.at("id")[0], 'c') << "query leaked another user's entry";
    ASSERT_NO_THROW(store_->search_all("Mira Okafor", q, 4));
  }
  // Operators are plain words: "speculative OR scope : "u1"" for Lucia finds nothing
  // (no Lucia entry has these words), for Mira exactly the speculative paper.
  EXPECT_TRUE(scored(store_->search("Lucia Ferreira", Task::Abstract, "speculative OR scope : \"u1\"")).empty());
  EXPECT_EQ(scored(store_->search("Mira Okafor", Task::Abstract, "NEAR(speculative, decoding)*")).size(), 1u);
  EXPECT_EQ(scored(store_->search("Mira Okafor", Task::Abstract, "title:speculative")).size(), 1u);
  // Queries without words score nothing: the first k entries in profile order.
  for (const char* q : {"", "?!*\"():^"}) {
    auto first = store_->search("Mira Okafor", Task::Abstract, q);
    EXPECT_EQ(first.size(), 4u) << q;
    EXPECT_TRUE(scored(first).empty()) << q;
  }
}

TEST(Fts5Terms, QuotesEveryWord) {
  EXPECT_EQ(fts5_terms("speculative decoding"), "\"speculative\" OR \"decoding\"");
  EXPECT_EQ(fts5_terms("NEAR(a b) OR c*"), "\"NEAR\" OR \"a\" OR \"b\" OR \"OR\" OR \"c\"");
  EXPECT_EQ(fts5_terms("title:x ^y \"z\""), "\"title\" OR \"x\" OR \"y\" OR \"z\"");
  EXPECT_EQ(fts5_terms(""), "");
  EXPECT_EQ(fts5_terms("()*\":^-+"), "");
  EXPECT_EQ(fts5_terms("caf\xc3\xa9\xe2\x80\x94" "cr\xc3\xa8me"), "\"caf\xc3\xa9\" OR \"cr\xc3\xa8me\"");
  EXPECT_EQ(fts5_terms("a a b", 2), "\"a\" OR \"a\"");  // duplicates kept, capped
  EXPECT_EQ(fts5_terms("\xff" "ab\xc3"), "\"ab\"");
}

class Files : public test::DirTest {};

const char* kGood1 =
    R"({"name": "U1", "input": "x", "output": "y", "profile": [{"title": "Alpha paper", "abstract": "about alpha", "year": 2020, "id": "1"}]})";
const char* kGood2 =
    R"({"name": "U2", "input": "x", "output": "y", "profile": [{"title": "Beta paper", "abstract": "about beta"}]})";

TEST_F(Files, MalformedJsonlReportsLinesAndImportsTheRest) {
  std::string path = file("bad.jsonl", std::string(kGood1) + "\n" +
                                           R"({"name": "U3", "profile": [{"title": "SECRET-TITLE", tru}]})" + "\n" +
                                           kGood2 + "\n" +
                                           R"({"name": "U4", "input": "x"})" + "\n" +
                                           R"({"name": "U5", "profile": [{"abstract": "no title"}]})" + "\n" +
                                           "\n" +
                                           R"({"name": "U6", "profile": [{"title": "t", "abstract": ["list"]}]})" +
                                           "\n" + R"(["not", "an", "object"])" + "\n" +
                                           R"({"name": "", "profile": []})" + "\n" +
                                           R"({"name": "U7", "profile": []})" + "\n");
  Store store = Store::open(db_);
  ImportReport r = store.import_file(Task::Abstract, path);
  EXPECT_EQ(r.records, 3u);  // U1, U2, U7 (empty profile)
  EXPECT_EQ(r.entries, 2u);
  EXPECT_EQ(r.users, 3u);
  EXPECT_EQ(r.skipped, 6u);
  ASSERT_EQ(r.errors.size(), 6u);
  EXPECT_TRUE(mentions(r.errors, "line 2: invalid JSON")) << r.errors[0];
  EXPECT_TRUE(mentions(r.errors, "line 4: field \"profile\": missing"));
  EXPECT_TRUE(mentions(r.errors, "line 5: field \"profile[0].title\": missing"));
  EXPECT_TRUE(mentions(r.errors, "line 7: field \"profile[0].abstract\": must be a string or number"));
  EXPECT_TRUE(mentions(r.errors, "line 8: record is not a JSON object"));
  EXPECT_TRUE(mentions(r.errors, "line 9: field \"name\": empty"));
  EXPECT_FALSE(mentions(r.errors, "SECRET")) << "errors must not quote record content";
  for (const auto& e : r.errors) EXPECT_EQ(e.rfind(path, 0), 0u) << "errors start with the file name: " << e;
  EXPECT_EQ(store.search("U2", Task::Abstract, "beta").size(), 1u);
  EXPECT_TRUE(store.has_user("U7"));
}

TEST_F(Files, StrictWritesNothing) {
  std::string path = file("bad.jsonl", std::string(kGood1) + "\n" + kGood2 + "\n{broken\n");
  {
    Store store = Store::open(db_);
    try {
      store.import_file(Task::Abstract, path, /*strict=*/true);
      FAIL() << "expected Error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("strict"), std::string::npos) << e.what();
    }
    StoreStats s = store.stats();
    EXPECT_EQ(s.users, 0u);
    EXPECT_TRUE(s.entries.empty());
    // The store is still usable afterwards.
    std::string good = file("good.jsonl", std::string(kGood1) + "\n");
    EXPECT_EQ(store.import_file(Task::Abstract, good, true).entries, 1u);
  }
  Store reopened = Store::open(db_, Store::Mode::ReadOnly);
  EXPECT_EQ(reopened.stats().entries.at(Task::Abstract), 1u);
  EXPECT_EQ(reopened.search("U1", Task::Abstract, "the alpha paper").size(), 1u);  // read-only search works
}

TEST_F(Files, JsonArrayInput) {
  std::string path = file("recs.json", std::string("\xEF\xBB\xBF[\n  ") + kGood1 + ",\n  " +
                                           R"({"name": "U8", "profile": [{"title": "odd ] } [ { \" chars", "abstract": "gamma \\ delta"}]})" +
                                           ",\n  " + kGood2 + "\n]\n");
  Store store = Store::open(db_);
  ImportReport r = store.import_file(Task::Abstract, path);
  EXPECT_EQ(r.records, 3u);
  EXPECT_EQ(r.entries, 3u);
  EXPECT_TRUE(r.errors.empty()) << r.errors[0];
  auto hit = store.search("U8", Task::Abstract, "gamma");
  ASSERT_EQ(hit.size(), 1u);
  EXPECT_EQ(hit[0].fields.at("title"), "odd ] } [ { \" chars");
  EXPECT_EQ(hit[0].fields.at("abstract"), "gamma \\ delta");
  EXPECT_EQ(store.import_file(Task::Abstract, path).duplicates, 3u);
}

TEST_F(Files, MalformedJsonArray) {
  std::string path = file("bad.json", std::string("[\n") + kGood1 + ",\n" +
                                          "{\"name\": \"U9\",\n \"profile\": [{\"title\": tru}]},\n" +  // element 2
                                          "{\"name\": \"U10\"}\n" +                                   // element 3
                                          kGood2 + "\n" +                                             // no comma
                                          "]\ntrailing");
  Store store = Store::open(db_);
  ImportReport r = store.import_file(Task::Abstract, path);
  EXPECT_EQ(r.records, 2u);
  EXPECT_EQ(r.skipped, 2u);
  // Element 2 starts on line 3; its bad literal is on line 4.
  EXPECT_TRUE(mentions(r.errors, "line 4 (array element 2): invalid JSON")) << ::testing::PrintToString(r.errors);
  EXPECT_TRUE(mentions(r.errors, "line 5 (array element 3): field \"profile\": missing"));
  EXPECT_TRUE(mentions(r.errors, "line 6: expected ',' or ']'"));
  EXPECT_TRUE(mentions(r.errors, "line 8: unexpected content after the closing ']'"));
  EXPECT_THROW(store.import_file(Task::Abstract, path, true), Error);

  std::string cut = file("cut.json", std::string("[\n") + kGood1 + ",\n{\"name\": \"U11\", \"profile\": [\n");
  ImportReport c = Store::open((dir_ / "c.db").string()).import_file(Task::Abstract, cut);
  EXPECT_EQ(c.records, 1u);
  EXPECT_EQ(c.skipped, 1u);
  EXPECT_TRUE(mentions(c.errors, "line 3 (array element 2): element is not terminated"));

  ImportReport empty = Store::open((dir_ / "e.db").string()).import_file(Task::Abstract, file("e.json", " [ ] "));
  EXPECT_EQ(empty.records, 0u);
  EXPECT_TRUE(empty.errors.empty());
}

TEST_F(Files, DeepNestingIsAnErrorNotACrash) {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  // (A file starting with '[' is read as a JSON array, so the deep line is second.)
  std::string path = file("deep.jsonl", std::string(kGood1) + "\n" + deep + "\n" + kGood2 + "\n");
  ImportReport r = Store::open(db_).import_file(Task::Abstract, path);
  EXPECT_EQ(r.records, 2u) << ::testing::PrintToString(r.errors);
  EXPECT_EQ(r.skipped, 1u);
  EXPECT_TRUE(mentions(r.errors, "line 2: invalid JSON", "nesting"));
  ImportReport a = Store::open((dir_ / "a.db").string()).import_file(Task::Abstract, file("deep.json", "[" + deep + "]"));
  EXPECT_EQ(a.skipped, 1u);
}

TEST_F(Files, LaMPUserIdAndNumericKeys) {
  std::string path = file("lamp.jsonl",
                          R"({"user_id": 310, "input": "x", "profile": [{"text": "sunny day at the beach", "id": 1}]})"
                          "\n"
                          R"({"id": "u42", "input": "x", "profile": [{"text": "rainy day indoors"}]})"
                          "\n");
  Store store = Store::open(db_);
  ImportReport r = store.import_file(Task::LaMP7, path);
  EXPECT_EQ(r.records, 2u) << ::testing::PrintToString(r.errors);
  EXPECT_EQ(store.search("310", Task::LaMP7, "beach").size(), 1u);
  EXPECT_EQ(store.search("u42", Task::LaMP7, "rainy").size(), 1u);
  Prompts p = build_prompts(store, "310", Task::LaMP7, "Complete the following tweet: day at the");
  EXPECT_EQ(p.personalized,
            "\"sunny day at the beach\" are written by a person. Following the given patterns Complete the "
            "following tweet: day at the");
}

TEST_F(Files, SameEntryForTwoUsersIsStoredTwice) {
  std::string path = file("two.jsonl", std::string(kGood1) + "\n" +
                                           R"({"name": "U2", "profile": [{"title": "Alpha paper", "abstract": "about alpha", "year": 2020, "id": "1"}]})" +
                                           "\n");
  ImportReport r = Store::open(db_).import_file(Task::Abstract, path);
  EXPECT_EQ(r.entries, 2u);
  EXPECT_EQ(r.duplicates, 0u);
}

// Large profiles take the pruned path (terms in >= half the entries dropped);
// the result must be what the full query gives.
TEST_F(Files, CommonTermPruningKeepsResults) {
  std::string text;
  for (int r = 0; r < 5; ++r) {
    text += "{\"author\": \"big\", \"profile\": [";
    for (int i = 0; i < 500; ++i) {
      int n = r * 500 + i;
      if (i) text += ",";
      std::string extra = n % 250 == 7 ? " rareword" : "";  // 10 entries
      if (n % 250 == 7) extra += std::string(" x") + std::to_string(n);  // varied lengths
      if (n == 1234) extra += " uniqueword";
      text += "{\"summary\": \"post " + std::to_string(n) + "\", \"content\": \"common words here" + extra + "\"}";
    }
    text += "]}\n";
  }
  Store store = Store::open(db_);
  ASSERT_EQ(store.import_file(Task::Writing, file("big.jsonl", text)).entries, 2500u);
  auto ids = [](const std::vector<Entry>& es) {
    std::vector<std::string> out;
    for (const auto& e : es) out.push_back(e.fields.at("summary"));
    return out;
  };
  auto pruned = store.search("big", Task::Writing, "common rareword words");
  auto plain = store.search("big", Task::Writing, "rareword");
  ASSERT_EQ(pruned.size(), 4u);
  EXPECT_EQ(ids(pruned), ids(plain));
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(pruned[i].score, plain[i].score, 1e-3);
  // Fewer than k informative matches: falls back to the full query.
  auto fallback = store.search("big", Task::Writing, "common uniqueword");
  ASSERT_EQ(fallback.size(), 4u);
  EXPECT_EQ(fallback[0].fields.at("summary"), "post 1234");
  EXPECT_EQ(store.search("big", Task::Writing, "common here", 3).size(), 3u);
}

TEST_F(Files, DatabaseIsOwnerOnly) {
  mode_t old = ::umask(0);  // the most permissive umask must not widen the file
  { Store s = Store::open(db_); }
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(db_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The rollback journal SQLite writes during import inherits the mode; after
  // import only the database file remains.
  Store s = Store::open(db_);
  s.import_file(Task::Abstract, file("g.jsonl", std::string(kGood1) + "\n"));
  ASSERT_EQ(::stat(db_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(Files, OpenErrorsNameThePath) {
  try {
    Store::open((dir_ / "missing.db").string(), Store::Mode::ReadOnly);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.db"), std::string::npos) << e.what();
  }
  std::string junk = file("junk.db", std::string(4096, 'j'));
  try {
    Store::open(junk);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("junk.db"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Store::open((dir_ / "no" / "such" / "dir.db").string()), Error);
  EXPECT_THROW(Store::open(db_).import_file(Task::Abstract, (dir_ / "nope.jsonl").string()), Error);
  { Store s = Store::open(db_); }
  Store ro = Store::open(db_, Store::Mode::ReadOnly);
  EXPECT_THROW(ro.import_file(Task::Abstract, file("g.jsonl", std::string(kGood1) + "\n")), Error);
}

TEST_F(Files, NothingIsPrintedDuringImportAndSearch) {
  std::string path = file("s.jsonl", std::string(kGood1) + "\n{bad\n");
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  {
    Store s = Store::open(db_);
    s.import_file(Task::Abstract, path);
    s.search("U1", Task::Abstract, "alpha");
    s.stats();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace specsteer::profile
