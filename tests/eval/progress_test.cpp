#include "eval/progress.h"

#include <gtest/gtest.h>

#include <cstdio>

using namespace specsteer::eval;

TEST(Progress, Durations) {
  EXPECT_EQ(format_duration(0), "0:00");
  EXPECT_EQ(format_duration(65), "1:05");
  EXPECT_EQ(format_duration(3723), "1:02:03");
  EXPECT_EQ(format_duration(-1), "?");
}

TEST(Progress, BarShowsCountEtaAndAcceptance) {
  ProgressState s;
  s.done = 3;
  s.total = 12;
  s.elapsed_s = 30;  // 10 s per step, 9 left
  s.acceptance = 0.734;
  s.label = "specsteer lambda=0.5 r7";
  std::string bar = render_bar(s, 12);
  EXPECT_EQ(bar, "[###.........] 3/12  25% elapsed 0:30 ETA 1:30 acceptance 73.4% | specsteer lambda=0.5 r7");
  std::string line = render_line(s);
  EXPECT_EQ(line, "[eval] 3/12 done, elapsed 0:30, ETA 1:30, running acceptance 0.734: specsteer lambda=0.5 r7");
}

TEST(Progress, SkippedRowsDoNotCountTowardsEta) {
  ProgressState s;
  s.done = 6;
  s.skipped = 4;  // resumed: 4 rows were already in results.jsonl
  s.total = 10;
  s.elapsed_s = 20;  // 2 rows ran, 10 s each, 4 left
  EXPECT_NE(render_line(s).find("ETA 0:40"), std::string::npos) << render_line(s);
  s.done = s.skipped = 4;
  EXPECT_NE(render_line(s).find("ETA ?"), std::string::npos);
}

TEST(Progress, PlainModeWritesOneLinePerStep) {
  char buf[4096] = {};
  FILE* f = fmemopen(buf, sizeof buf - 1, "w");
  ASSERT_NE(f, nullptr);
  {
    Progress p(2, f, false);
    p.step("llm r1", 0, 0);
    p.step("sd r1", 10, 7);
    p.finish();
  }
  std::fclose(f);
  std::string out(buf);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2);
  EXPECT_NE(out.find("[eval] 1/2 done"), std::string::npos);
  EXPECT_NE(out.find("running acceptance 0.700: sd r1"), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos);
}

TEST(Progress, TtyModeRedrawsOneLine) {
  char buf[4096] = {};
  FILE* f = fmemopen(buf, sizeof buf - 1, "w");
  ASSERT_NE(f, nullptr);
  {
    Progress p(2, f, true);
    p.step("a", 4, 4);
    p.step("b", 4, 0);
    p.finish();
  }
  std::fclose(f);
  std::string out(buf);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\r'), 2);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);  // only the final newline
  EXPECT_NE(out.find("acceptance 50.0%"), std::string::npos) << out;
}
