// The flow-line limit: a burst of kFlowLineBurst lines, then about
// kFlowLinesPerSecond a second; what is held back is counted and said.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/bytes.h"
#include "core/log.h"

namespace vt {
namespace {

std::vector<std::string>* g_lines = nullptr;
void capture(void*, LogLevel, const char* msg) { g_lines->push_back(msg); }

TEST(FlowLog, BurstThenRateThenTheCountIsSaid) {
  // A fresh thread: its own bucket, full.
  std::thread([] {
    std::vector<std::string> lines;
    g_lines = &lines;
    LogSink sink{capture, nullptr, LogLevel::kInfo};
    LogScope scope(&sink);
    unsigned allowed = 0;
    for (unsigned i = 0; i < kFlowLineBurst + 100; ++i) allowed += flowLogAllowed() ? 1 : 0;
    // The burst, plus what refilled while the loop ran (well under 100).
    EXPECT_GE(allowed, kFlowLineBurst);
    EXPECT_LT(allowed, kFlowLineBurst + 100);
    EXPECT_TRUE(lines.empty());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // ~20 tokens
    EXPECT_TRUE(flowLogAllowed());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("flow lines suppressed"), std::string::npos) << lines[0];
    flushFlowLog();  // nothing held back since: nothing said
    EXPECT_EQ(lines.size(), 1u);
    g_lines = nullptr;
  }).join();
}

TEST(Journal, StreamMatchesTheDescriptorAndPriorities) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  struct stat st {};
  ASSERT_EQ(::fstat(p[1], &st), 0);
  const std::string env = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  EXPECT_TRUE(isJournalStream(env.c_str(), p[1]));
  EXPECT_FALSE(isJournalStream((env + "1").c_str(), p[1]));
  EXPECT_FALSE(isJournalStream("garbage", p[1]));
  EXPECT_FALSE(isJournalStream(nullptr, p[1]));
  ::close(p[0]);
  ::close(p[1]);
  EXPECT_EQ(syslogPriority(LogLevel::kError), 3);
  EXPECT_EQ(syslogPriority(LogLevel::kWarn), 4);
  EXPECT_EQ(syslogPriority(LogLevel::kInfo), 6);
  EXPECT_EQ(syslogPriority(LogLevel::kDebug), 7);
}

TEST(Bytes, AsciiIEquals) {
  EXPECT_TRUE(asciiIEquals("Host", "hOST"));
  EXPECT_FALSE(asciiIEquals("Host", "Hosts"));
  EXPECT_FALSE(asciiIEquals("a\xc4", "A\xe4"));  // no case beyond ASCII
}

}  // namespace
}  // namespace vt
