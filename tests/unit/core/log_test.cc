// The flow-line limit: a burst of kFlowLineBurst lines, then about
// kFlowLinesPerSecond a second; what is held back is counted and said.
#include <gtest/gtest.h>

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

TEST(Bytes, AsciiIEquals) {
  EXPECT_TRUE(asciiIEquals("Host", "hOST"));
  EXPECT_FALSE(asciiIEquals("Host", "Hosts"));
  EXPECT_FALSE(asciiIEquals("a\xc4", "A\xe4"));  // no case beyond ASCII
}

}  // namespace
}  // namespace vt
