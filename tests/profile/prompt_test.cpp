// Prompt construction (paper tables 13/14 via data/templates.json), checked
// byte for byte against literal strings.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "profile/profile.h"
#include "util.h"

namespace specsteer::profile {
namespace {

Entry entry(std::map<std::string, std::string> fields) {
  Entry e;
  e.fields = std::move(fields);
  return e;
}

TEST(Task, NamesRoundTrip) {
  for (Task t : kAllTasks) EXPECT_EQ(parse_task(task_name(t)), t);
  EXPECT_EQ(parse_task("Review"), Task::Review);
  EXPECT_EQ(parse_task("LAMP7"), Task::LaMP7);
  EXPECT_THROW(parse_task("summary"), Error);
  EXPECT_THROW(parse_task(""), Error);
}

TEST(Templates, EmbeddedCopyMatchesDataFile) {
  std::ifstream in(std::string(SPECSTEER_SOURCE_DIR) + "/data/templates.json", std::ios::binary);
  ASSERT_TRUE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(templates_json(), ss.str()) << "re-run cmake: the embedded table is stale";
}

TEST(Templates, RequiredFieldsComeFromTemplateAndIndex) {
  const auto& r = task_template(Task::Review);
  EXPECT_EQ(r.user_key, "reviewerId");
  EXPECT_EQ(r.required, (std::vector<std::string>{"description", "summary", "reviewText"}));
  const auto& a = task_template(Task::Abstract);
  EXPECT_EQ(a.required, (std::vector<std::string>{"title", "abstract"}));
}

TEST(Input, FromFieldsTable14) {
  EXPECT_EQ(input_from_fields(Task::Abstract, {{"title", "Sparse Attention"}}),
            "Generate an abstract for the title \"Sparse Attention\"");
  EXPECT_EQ(input_from_fields(Task::Review, {{"overall", "5.0"}, {"description", "A kettle"}, {"summary", "Good"}}),
            "Generate a review text written by a reviewer who has a given an overall rating of \"5.0\" for a "
            "product with description \"A kettle\". The summary of the review text is \"Good\".");
  EXPECT_EQ(input_from_fields(Task::Writing, {{"summary", "My first loaf"}}),
            "Generate the content for a reddit post \"My first loaf\"");
  EXPECT_EQ(input_from_fields(Task::LaMP4, {{"text", "Rain is coming."}}),
            "Generate a headline for the following article: Rain is coming.");
  EXPECT_EQ(input_from_fields(Task::LaMP5, {{"abstract", "We study X."}}),
            "Generate a title for the following abstract of a paper: We study X.");
  EXPECT_EQ(input_from_fields(Task::LaMP7, {{"text", "just landed in"}}),
            "Complete the following tweet: just landed in");
}

TEST(Input, MissingFieldNamesIt) {
  try {
    input_from_fields(Task::Review, {{"overall", "5.0"}, {"summary", "Good"}});
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"description\""), std::string::npos) << e.what();
  }
}

TEST(Prompt, AbstractGolden) {
  Prompts p = build_prompts(Task::Abstract, "Generate an abstract for the title \"T\"",
                            {entry({{"title", "A"}, {"abstract", "Alpha."}, {"year", "2020"}}),
                             entry({{"title", "B"}, {"abstract", "Beta."}})});
  EXPECT_EQ(p.x, "Generate an abstract for the title \"T\"");
  EXPECT_EQ(p.personalized,
            "Here are some examples of abstracts written by this author:\n\n"
            "Title: \"A\" Abstract: \"Alpha.\"\n\n"
            "Title: \"B\" Abstract: \"Beta.\"\n\n"
            "Following these examples, Generate an abstract for the title \"T\"");
  EXPECT_EQ(p.used.size(), 2u);
}

TEST(Prompt, WritingGolden) {
  Prompts p = build_prompts(Task::Writing, "Generate the content for a reddit post \"S\"",
                            {entry({{"summary", "Old"}, {"content", "Body."}})});
  EXPECT_EQ(p.personalized,
            "Here are past posts written by this author:\n\n"
            "Summary: \"Old\" Content: \"Body.\"\n\n"
            "Following their style, Generate the content for a reddit post \"S\"");
}

TEST(Prompt, LaMPTemplates) {
  std::vector<Entry> two = {entry({{"title", "T1"}, {"abstract", "A1"}}), entry({{"title", "T2"}, {"abstract", "A2"}})};
  EXPECT_EQ(build_prompts(Task::LaMP5, "X", two).personalized,
            "\"T1\" is the title for \"A1\", and \"T2\" is the title for \"A2\". Following the given patterns X");
  EXPECT_EQ(build_prompts(Task::LaMP4, "X", {entry({{"title", "H"}, {"text", "Story."}})}).personalized,
            "\"H\" is the title for \"Story.\". X");
  EXPECT_EQ(build_prompts(Task::LaMP7, "X", {entry({{"text", "a b"}}), entry({{"text", "c"}})}).personalized,
            "\"a b\", and \"c\" are written by a person. Following the given patterns X");
}

TEST(Prompt, NoEntriesGivesX) {
  for (Task t : kAllTasks) {
    Prompts p = build_prompts(t, "just x", {});
    EXPECT_EQ(p.personalized, "just x");
    EXPECT_EQ(p.x, "just x");
    EXPECT_TRUE(p.used.empty());
  }
}

TEST(Prompt, ValuesAreNotReexpanded) {
  Prompts p = build_prompts(Task::Writing, "x", {entry({{"summary", "{content}"}, {"content", "{summary} \"q\""}})});
  EXPECT_EQ(p.personalized,
            "Here are past posts written by this author:\n\nSummary: \"{content}\" Content: \"{summary} \"q\"\"\n\n"
            "Following their style, x");
}

TEST(Prompt, EntryMissingTemplateFieldThrows) {
  EXPECT_THROW(build_prompts(Task::Abstract, "x", {entry({{"title", "only"}})}), Error);
}

// The known record: reviewer A1Z8BDC6TY3NW of the shipped sample, x = its
// `input`, k = 2. The two entries are the headphone reviews that share the
// query's rare words (noise, cancelling, headphones, over, ear, wireless).
TEST(Prompt, GoldenFromStoreForKnownRecord) {
  auto dir = test::fresh_dir();
  Store store = Store::open((dir / "p.db").string());
  store.import_file(Task::Review, test::sample("review"));

  std::ifstream in(test::sample("review"));
  std::string line, x;
  while (std::getline(in, line)) {
    auto rec = nlohmann::json::parse(line);
    if (rec["reviewerId"] == "A1Z8BDC6TY3NW") x = rec["input"];
  }
  ASSERT_EQ(x,
            "Generate a review text written by a reviewer who has a given an overall rating of \"5.0\" for a product "
            "with description \"Over-ear wireless headphones with adaptive noise cancelling\". The summary of the "
            "review text is \"Best headphones I have owned\".");

  Prompts p = build_prompts(store, "A1Z8BDC6TY3NW", Task::Review, x, 2);
  EXPECT_EQ(p.x, x);
  EXPECT_EQ(p.personalized,
            "Here are past reviews written by this user:\n\n"
            "Product: \"Noise cancelling over-ear headphones\" Summary: \"Quiet flights\" Review: \"The noise "
            "cancelling removes engine drone on flights and the ear cups stay comfortable for hours. The companion "
            "app is clunky, but the sound is warm and detailed.\"\n\n"
            "Product: \"Wireless earbuds with charging case\" Summary: \"Case stopped charging\" Review: \"They "
            "sounded fine for a few weeks, then the charging case stopped charging the left earbud. Support asked me "
            "to reset them three times before offering a replacement.\"\n\n"
            "Following their style, Generate a review text written by a reviewer who has a given an overall rating "
            "of \"5.0\" for a product with description \"Over-ear wireless headphones with adaptive noise "
            "cancelling\". The summary of the review text is \"Best headphones I have owned\".");
  ASSERT_EQ(p.used.size(), 2u);
  EXPECT_EQ(p.used[0].fields.at("overall"), "4.0");  // the JSON number 4.0 keeps its spelling
  EXPECT_GT(p.used[0].score, p.used[1].score);

  // An unknown user has no profile: personalized = x.
  EXPECT_EQ(build_prompts(store, "nobody", Task::Review, x).personalized, x);
}

}  // namespace
}  // namespace specsteer::profile
