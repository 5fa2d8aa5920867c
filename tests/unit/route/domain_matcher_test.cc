#include "route/domain_matcher.h"

#include <gtest/gtest.h>

namespace vt::route {
namespace {

TEST(DomainMatcher, SuffixOnLabelBoundary) {
  DomainMatcher m;
  ASSERT_TRUE(m.add(DomainKind::kSuffix, "example.com", 0));
  EXPECT_EQ(m.lowest("example.com"), 0u);
  EXPECT_EQ(m.lowest("a.example.com"), 0u);
  EXPECT_EQ(m.lowest("x.y.a.example.com"), 0u);
  EXPECT_EQ(m.lowest("badexample.com"), kNoRule);
  EXPECT_EQ(m.lowest("example.com.evil.net"), kNoRule);
  EXPECT_EQ(m.lowest("com"), kNoRule);
}

TEST(DomainMatcher, FullIsExact) {
  DomainMatcher m;
  ASSERT_TRUE(m.add(DomainKind::kFull, "www.example.com", 0));
  EXPECT_EQ(m.lowest("www.example.com"), 0u);
  EXPECT_EQ(m.lowest("a.www.example.com"), kNoRule);
  EXPECT_EQ(m.lowest("example.com"), kNoRule);
}

TEST(DomainMatcher, CaseAndTrailingDot) {
  DomainMatcher m;
  ASSERT_TRUE(m.add(DomainKind::kFull, "WWW.Example.COM.", 0));
  ASSERT_TRUE(m.add(DomainKind::kSuffix, ".Google.com", 1));  // leading dot: same as google.com
  ASSERT_TRUE(m.add(DomainKind::kKeyword, "TrAcK", 2));
  EXPECT_EQ(m.lowest("www.example.com"), 0u);
  EXPECT_EQ(m.lowest("www.EXAMPLE.com."), 0u);
  EXPECT_EQ(m.lowest("GOOGLE.COM."), 1u);
  EXPECT_EQ(m.lowest("mail.google.com"), 1u);
  EXPECT_EQ(m.lowest("x.TRACKER.net"), 2u);
  EXPECT_EQ(m.lowest("."), kNoRule);
  EXPECT_EQ(m.lowest(""), kNoRule);
}

TEST(DomainMatcher, LowestRuleAcrossKinds) {
  DomainMatcher m;
  ASSERT_TRUE(m.add(DomainKind::kKeyword, "ads", 0));
  ASSERT_TRUE(m.add(DomainKind::kSuffix, "example.com", 1));
  ASSERT_TRUE(m.add(DomainKind::kFull, "ads.example.com", 2));
  ASSERT_TRUE(m.add(DomainKind::kRegex, "^cdn[0-9]+\\.", 3));
  ASSERT_TRUE(m.add(DomainKind::kSuffix, "com", 4));
  EXPECT_EQ(m.lowest("ads.example.com"), 0u);  // keyword rule 0 beats full rule 2
  EXPECT_EQ(m.lowest("www.example.com"), 1u);
  EXPECT_EQ(m.lowest("cdn12.other.com"), 3u);
  EXPECT_EQ(m.lowest("cdn.other.com"), 4u);
  EXPECT_EQ(m.lowest("cdn12.other.net"), 3u);
  EXPECT_EQ(m.lowest("other.net"), kNoRule);
}

TEST(DomainMatcher, AcceptAndBoundSkipCandidates) {
  DomainMatcher m;
  ASSERT_TRUE(m.add(DomainKind::kSuffix, "example.com", 0));
  ASSERT_TRUE(m.add(DomainKind::kSuffix, "example.com", 1));
  ASSERT_TRUE(m.add(DomainKind::kRegex, "example", 2));
  auto not0 = [](uint32_t r) { return r != 0; };
  EXPECT_EQ(m.lowest("a.example.com", kNoRule, not0), 1u);
  EXPECT_EQ(m.lowest("a.example.com", 1, not0), kNoRule);  // only rules below 1 count
  int regex_calls = 0;
  auto count = [&](uint32_t r) {
    if (r == 2) ++regex_calls;
    return true;
  };
  EXPECT_EQ(m.lowest("a.example.com", kNoRule, count), 0u);
  EXPECT_EQ(regex_calls, 0);  // the regex rule could not win: never tried
}

TEST(DomainMatcher, OddQueryNamesDoNotMatchTheTrie) {
  DomainMatcher m;
  ASSERT_TRUE(m.add(DomainKind::kSuffix, "example.com", 0));
  ASSERT_TRUE(m.add(DomainKind::kKeyword, "evil", 1));
  EXPECT_EQ(m.lowest("a..example.com"), 0u);  // the suffix labels are all there
  EXPECT_EQ(m.lowest("example..com"), kNoRule);
  EXPECT_EQ(m.lowest(".example.com"), 0u);
  EXPECT_EQ(m.lowest("..evil"), 1u);
  EXPECT_EQ(m.lowest(std::string(300, 'a')), kNoRule);  // too long: no match at all
  std::string long_label = std::string(100, 'x') + ".example.com";
  EXPECT_EQ(m.lowest(long_label), 0u);
}

TEST(DomainMatcher, KeywordsShortLongAndOverlapping) {
  DomainMatcher m;
  ASSERT_TRUE(m.add(DomainKind::kKeyword, "tracking", 3));
  ASSERT_TRUE(m.add(DomainKind::kKeyword, "track", 4));
  ASSERT_TRUE(m.add(DomainKind::kKeyword, "tra", 5));
  ASSERT_TRUE(m.add(DomainKind::kKeyword, "q", 6));
  ASSERT_TRUE(m.add(DomainKind::kKeyword, "ab", 7));
  ASSERT_TRUE(m.add(DomainKind::kKeyword, "COM", 8));
  EXPECT_EQ(m.lowest("x.tracking.net"), 3u);
  EXPECT_EQ(m.lowest("x.tracker.net"), 4u);
  EXPECT_EQ(m.lowest("tra"), 5u);  // the whole name
  EXPECT_EQ(m.lowest("traq"), 5u);
  EXPECT_EQ(m.lowest("q.net"), 6u);
  EXPECT_EQ(m.lowest("lab.net"), 7u);
  EXPECT_EQ(m.lowest("x.net"), kNoRule);
  EXPECT_EQ(m.lowest("a.com"), 8u);  // at the very end
  EXPECT_EQ(m.lowest("tr"), kNoRule);
  auto no3 = [](uint32_t r) { return r != 3; };
  EXPECT_EQ(m.lowest("x.tracking.net", kNoRule, no3), 4u);
}

TEST(DomainMatcher, RegexCaseFollowsThePattern) {
  DomainMatcher m;
  ASSERT_TRUE(m.add(DomainKind::kRegex, "^API\\d\\.", 0));  // uppercase: compiled icase
  ASSERT_TRUE(m.add(DomainKind::kRegex, "\\.cdn[0-9]\\.", 1));
  EXPECT_EQ(m.lowest("api2.example.com"), 0u);
  EXPECT_EQ(m.lowest("Api2.example.com"), 0u);
  EXPECT_EQ(m.lowest("www.CDN7.example.com"), 1u);
  EXPECT_EQ(m.lowest("apix.example.com"), kNoRule);
}

TEST(DomainMatcher, BadEntriesAreNamed) {
  DomainMatcher m;
  Status st = m.add(DomainKind::kRegex, "(unclosed", 0);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("(unclosed"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("domain_regex"), std::string::npos);
  st = m.add(DomainKind::kRegex, std::string(DomainMatcher::kMaxRegexLength + 1, 'a'), 0);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("longer than"), std::string::npos);
  EXPECT_FALSE(m.add(DomainKind::kSuffix, "", 0));
  EXPECT_FALSE(m.add(DomainKind::kSuffix, "a..b", 0));
  EXPECT_FALSE(m.add(DomainKind::kFull, "http://x.com", 0));
  EXPECT_FALSE(m.add(DomainKind::kFull, std::string(64, 'a') + ".com", 0));
  EXPECT_FALSE(m.add(DomainKind::kKeyword, "", 0));
  EXPECT_TRUE(m.empty());
  EXPECT_TRUE(m.add(DomainKind::kSuffix, "_srv.example-1.com", 0));
}

}  // namespace
}  // namespace vt::route
