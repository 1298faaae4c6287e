// `specsteer profile ...` end to end: the real binary on the shipped sample.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "profile/util.h"

namespace {

namespace fs = std::filesystem;

using specsteer::testing::CliResult;
using specsteer::testing::q;
CliResult run(const std::string& args) { return specsteer::testing::run_cli(args); }

class ProfileCli : public ::testing::Test {
 protected:
  void SetUp() override {
    // One directory per test: ctest runs this suite's tests in parallel processes.
    dir_ = specsteer::profile::test::fresh_dir();
    db_ = q((dir_ / "p.db").string());
  }
  std::string sample(const char* task) { return q(specsteer::profile::test::sample(task)); }
  fs::path dir_;
  std::string db_;
};

TEST_F(ProfileCli, ImportSearchStatsPrompt) {
  CliResult imp = run("profile import --db " + db_ + " --task abstract --data " + sample("abstract"));
  ASSERT_EQ(imp.rc, 0) << imp.out;
  EXPECT_NE(imp.out.find("imported 4 records: 16 new entries, 6 duplicates, 3 new users, 0 skipped"),
            std::string::npos)
      << imp.out;
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "p.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  CliResult again = run("profile import --db " + db_ + " --task abstract --data " + sample("abstract"));
  EXPECT_NE(again.out.find("0 new entries, 22 duplicates"), std::string::npos) << again.out;

  CliResult search = run("profile search --db " + db_ + " --user 'Mira Okafor' --query " +
                   q("speculative* NEAR(decoding \"draft") + " -k 2 --json");
  ASSERT_EQ(search.rc, 0) << search.out;
  auto hits = nlohmann::json::parse(search.out);
  // k = 2 entries: the one match, then the next abstract in profile order (unscored).
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0]["fields"]["title"], "Speculative Decoding with Draft Model Ensembles");
  EXPECT_EQ(hits[0]["task"], "abstract");

  CliResult stats = run("profile stats --db " + db_ + " --json");
  ASSERT_EQ(stats.rc, 0) << stats.out;
  auto s = nlohmann::json::parse(stats.out);
  EXPECT_EQ(s["users"], 3);
  EXPECT_EQ(s["entries"]["abstract"], 16);

  CliResult prompt = run("profile prompt --db " + db_ + " --user 'Mira Okafor' --task abstract -k 1 --json --input " +
                   q("Generate an abstract for the title \"Speculative decoding on phones\""));
  ASSERT_EQ(prompt.rc, 0) << prompt.out;
  auto p = nlohmann::json::parse(prompt.out);
  EXPECT_EQ(p["x"], "Generate an abstract for the title \"Speculative decoding on phones\"");
  std::string personalized = p["personalized"];
  EXPECT_EQ(personalized.rfind("Here are some examples of abstracts written by this author:\n\nTitle: "
                               "\"Speculative Decoding with Draft Model Ensembles\" Abstract: \"",
                               0),
            0u)
      << personalized;
  EXPECT_NE(personalized.find("\"\n\nFollowing these examples, Generate an abstract for the title"), std::string::npos);
}

TEST_F(ProfileCli, BadInputExitCodes) {
  std::ofstream(dir_ / "bad.jsonl") << "{\"name\": \"u\", \"profile\": []}\n{broken\n";
  std::string bad = q((dir_ / "bad.jsonl").string());
  CliResult partial = run("profile import --db " + db_ + " --task abstract --data " + bad);
  EXPECT_EQ(partial.rc, 2) << partial.out;
  EXPECT_NE(partial.out.find("line 2: invalid JSON"), std::string::npos) << partial.out;
  CliResult strict = run("profile import --db " + db_ + " --task abstract --data " + bad + " --strict");
  EXPECT_EQ(strict.rc, 1) << strict.out;
  EXPECT_NE(strict.out.find("nothing imported"), std::string::npos) << strict.out;
  CliResult task = run("profile import --db " + db_ + " --task summary --data " + bad);
  EXPECT_EQ(task.rc, 1);
  EXPECT_NE(task.out.find("unknown task"), std::string::npos) << task.out;
  CliResult missing = run("profile search --db " + q((dir_ / "none.db").string()) + " --user u --query x");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.out.find("none.db"), std::string::npos) << missing.out;
  EXPECT_FALSE(fs::exists(dir_ / "none.db")) << "search must not create a database";
}

TEST_F(ProfileCli, GenerateRefusesAUserTheStoreDoesNotHave) {
  ASSERT_EQ(run("profile import --db " + db_ + " --task abstract --data " + sample("abstract")).rc, 0);
  const std::string slm = q(std::string(SPECSTEER_SOURCE_DIR) + "/models/minilamp/specialist.gguf");
  const std::string gen = "generate --slm " + slm + " --method slm+ --profile-db " + db_ +
                          " --task abstract --input 'A title' -n 2 -t 1 --user ";
  // A typo in --user would otherwise give an unpersonalized text and exit 0.
  CliResult unknown = run(gen + q("Mira Okafr"));
  EXPECT_EQ(unknown.rc, 1) << unknown.out;
  EXPECT_NE(unknown.out.find("--user 'Mira Okafr' is not in the profile store"), std::string::npos) << unknown.out;
  CliResult known = run(gen + q("Mira Okafor"));
  EXPECT_EQ(known.rc, 0) << known.out;
}

// `profile lora` maps a user to an adapter of the SLM+ that `generate
// --profile-db --user` applies (unless --lora names others); a file that is
// not a LoRA adapter is refused.
TEST_F(ProfileCli, ProfileLoraGivesAUserTheirAdapter) {
  ASSERT_EQ(run("profile import --db " + db_ + " --task abstract --data " + sample("abstract")).rc, 0);
  const std::string slm_path = std::string(SPECSTEER_SOURCE_DIR) + "/models/minilamp/specialist.gguf";
  const std::string slm = q(slm_path), adapter = q((dir_ / "mira.gguf").string());
  ASSERT_EQ(run("gguf synth-lora -m " + slm + " -o " + adapter + " --rank 4 --std 0.3").rc, 0);
  CliResult not_adapter = run("profile lora --db " + db_ + " --user 'Mira Okafor' --set " + slm);
  EXPECT_EQ(not_adapter.rc, 1) << not_adapter.out;
  EXPECT_NE(not_adapter.out.find("not a LoRA adapter"), std::string::npos) << not_adapter.out;
  CliResult none = run("profile lora --db " + db_ + " --user 'Mira Okafor'");
  EXPECT_EQ(none.rc, 0) << none.out;
  EXPECT_NE(none.out.find("no adapters"), std::string::npos) << none.out;

  const std::string gen = "generate --slm " + slm + " --method slm+ --profile-db " + db_ +
                          " --task abstract --input 'A title' -n 12 -t 1 --retrieve-k 1 --json --user 'Mira Okafor'";
  auto text = [&](const std::string& extra) {
    CliResult r = run(gen + extra);
    EXPECT_EQ(r.rc, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')), nullptr, false);
    return j.is_discarded() ? std::string("?") : j["text"].get<std::string>();
  };
  const std::string plain = text("");
  CliResult set = run("profile lora --db " + db_ + " --user 'Mira Okafor' --set " + adapter + ":2 --json");
  ASSERT_EQ(set.rc, 0) << set.out;
  const auto listed = nlohmann::json::parse(set.out);
  ASSERT_EQ(listed["adapters"].size(), 1u);
  EXPECT_TRUE(fs::path(listed["adapters"][0]["path"].get<std::string>()).is_absolute());
  EXPECT_EQ(listed["adapters"][0]["scale"], 2.0);
  const std::string adapted = text("");
  EXPECT_NE(adapted, plain) << "the user's adapter changed nothing";
  // --lora replaces the user's adapters: the same file at scale 0 is the base model.
  EXPECT_EQ(text(" --lora " + adapter + ":0"), plain);
  EXPECT_EQ(run("profile lora --db " + db_ + " --user 'Mira Okafor' --clear").rc, 0);
  EXPECT_EQ(text(""), plain);
  // An adapter file that is gone is named.
  ASSERT_EQ(run("profile lora --db " + db_ + " --user 'Mira Okafor' --set " + adapter).rc, 0);
  fs::remove(dir_ / "mira.gguf");
  CliResult gone = run(gen);
  EXPECT_EQ(gone.rc, 1) << gone.out;
  EXPECT_NE(gone.out.find("the LoRA adapter of profile user 'Mira Okafor'"), std::string::npos) << gone.out;
}

}  // namespace
