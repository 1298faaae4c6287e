// Profile store at scale: a 100k-entry review profile (one user, as on a
// device) written as JSONL, imported, then queried with review-style inputs.
//   BM_ProfileImport100k: import rate (counter entries_per_s)
//   BM_ProfileSearchTop4:  latency of one BM25 top-4 search, query = a task input x
//   BM_ProfilePrompt:      search + personalized prompt construction
//   BM_ProfileSearchSample: the same search on the shipped sample (5 reviews per user)
// Data is synthetic (seeded), words drawn Zipf-like from a fixed vocabulary so
// some terms are common and most are rare, as in real text.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "common/timer.h"
#include "profile/profile.h"

namespace {

using namespace specsteer::profile;
namespace fs = std::filesystem;

constexpr size_t kEntries = 100000;
constexpr size_t kVocab = 20000;

struct Corpus {
  std::vector<std::string> vocab;
  std::discrete_distribution<size_t> zipf;
  std::mt19937_64 rng{20240607};

  Corpus() {
    const char* syll[] = {"ka", "lo", "mi", "ren", "tu", "sa", "vel", "or", "pi", "dan", "qu", "zel", "bo", "ni", "ta"};
    std::vector<double> w;
    for (size_t i = 0; i < kVocab; ++i) {
      std::string word;
      for (size_t v = i + 1; v; v /= 15) word += syll[v % 15];
      vocab.push_back(word);
      w.push_back(1.0 / static_cast<double>(i + 1));
    }
    zipf = std::discrete_distribution<size_t>(w.begin(), w.end());
  }
  std::string text(size_t words) {
    std::string s;
    for (size_t i = 0; i < words; ++i) {
      if (i) s += ' ';
      s += vocab[zipf(rng)];
    }
    return s;
  }
};

struct Fixture {
  fs::path dir = fs::temp_directory_path() / "specsteer_profile_bench";
  std::string data = (dir / "review100k.jsonl").string();
  std::string db = (dir / "profile.db").string();
  std::vector<std::string> queries;

  Fixture() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    Corpus c;
    // 100 records of 1000 entries each, all for one reviewer.
    std::ofstream out(data);
    for (size_t r = 0; r < kEntries / 1000; ++r) {
      nlohmann::json rec = {{"reviewerId", "A1BENCH"}, {"input", "x"}, {"output", "y"}};
      nlohmann::json profile = nlohmann::json::array();
      for (size_t i = 0; i < 1000; ++i)
        profile.push_back({{"overall", static_cast<double>(1 + (r + i) % 5)},
                           {"description", c.text(8)},
                           {"summary", c.text(5)},
                           {"reviewText", c.text(60)}});
      rec["profile"] = profile;
      out << rec.dump() << "\n";
    }
    for (int q = 0; q < 64; ++q)
      queries.push_back(input_from_fields(
          Task::Review, {{"overall", "4.0"}, {"description", c.text(8)}, {"summary", c.text(5)}}));
  }
  ~Fixture() { fs::remove_all(dir); }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void BM_ProfileImport100k(benchmark::State& state) {
  Fixture& f = fixture();
  double seconds = 0;
  size_t entries = 0;
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove(f.db);
    state.ResumeTiming();
    specsteer::Stopwatch sw;
    Store s = Store::open(f.db);
    ImportReport r = s.import_file(Task::Review, f.data);
    seconds += sw.seconds();
    entries += r.entries;
    if (r.entries != kEntries) state.SkipWithError("unexpected entry count");
  }
  state.counters["entries_per_s"] = static_cast<double>(entries) / seconds;
  state.counters["db_MiB"] = static_cast<double>(fs::file_size(f.db)) / (1 << 20);
  state.counters["file_MiB"] = static_cast<double>(fs::file_size(f.data)) / (1 << 20);
}
BENCHMARK(BM_ProfileImport100k)->Unit(benchmark::kSecond)->Iterations(1);

void ensure_db(Fixture& f) {
  if (!fs::exists(f.db)) Store::open(f.db).import_file(Task::Review, f.data);
}

void BM_ProfileSearchTop4(benchmark::State& state) {
  Fixture& f = fixture();
  ensure_db(f);
  Store s = Store::open(f.db, Store::Mode::ReadOnly);
  size_t i = 0, hits = 0;
  for (auto _ : state) {
    auto r = s.search("A1BENCH", Task::Review, f.queries[i++ % f.queries.size()], 4);
    hits += r.size();
    benchmark::DoNotOptimize(r);
  }
  state.counters["hits_per_query"] = static_cast<double>(hits) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_ProfileSearchTop4)->Unit(benchmark::kMillisecond);

void BM_ProfilePrompt(benchmark::State& state) {
  Fixture& f = fixture();
  ensure_db(f);
  Store s = Store::open(f.db, Store::Mode::ReadOnly);
  size_t i = 0;
  for (auto _ : state) {
    Prompts p = build_prompts(s, "A1BENCH", Task::Review, f.queries[i++ % f.queries.size()], 4);
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_ProfilePrompt)->Unit(benchmark::kMillisecond);

// A realistic device profile: the shipped sample (a handful of reviews per user).
void BM_ProfileSearchSample(benchmark::State& state) {
  Fixture& f = fixture();
  std::string db = (f.dir / "sample.db").string();
  fs::remove(db);
  Store::open(db).import_file(Task::Review, (fs::path(__FILE__).parent_path().parent_path() / "data/longlamp-sample/review.jsonl").string());
  Store s = Store::open(db, Store::Mode::ReadOnly);
  std::string x = input_from_fields(Task::Review, {{"overall", "4.0"},
                                                   {"description", "Conical burr coffee grinder with timer"},
                                                   {"summary", "Great grind, noisy motor"}});
  for (auto _ : state) benchmark::DoNotOptimize(s.search("A2KQ7R4VN8TZ1", Task::Review, x, 4));
}
BENCHMARK(BM_ProfileSearchSample)->Unit(benchmark::kMicrosecond);

}  // namespace
