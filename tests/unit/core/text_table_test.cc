#include "core/text_table.h"

#include <gtest/gtest.h>

#include "core/json.h"

namespace vt {
namespace {

TEST(TextTable, ColumnsAlignedLastNotPadded) {
  TextTable t({"ID", "NAME", "UP"});
  t.add({"1", "a-long-name", "10 B"});
  t.add({"123", "x\ny", "2.0 KiB"});
  EXPECT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.render(),
            "ID   NAME         UP\n"
            "1    a-long-name  10 B\n"
            "123  x?y          2.0 KiB\n");
}

TEST(TextTable, HumanUnits) {
  EXPECT_EQ(humanBytes(0), "0 B");
  EXPECT_EQ(humanBytes(1023), "1023 B");
  EXPECT_EQ(humanBytes(1536), "1.5 KiB");
  EXPECT_EQ(humanBytes(100ULL << 20), "100 MiB");
  EXPECT_EQ(humanBytes(3ULL << 30), "3.0 GiB");
  EXPECT_EQ(humanDuration(20), "20ms");
  EXPECT_EQ(humanDuration(1500), "1.5s");
  EXPECT_EQ(humanDuration(61000), "1m01s");
  EXPECT_EQ(humanDuration(3723000), "1h02m");
  EXPECT_EQ(humanDuration(90000000), "1d01h");
}

TEST(Json, StringsEscapedObjectsWritten) {
  EXPECT_EQ(jsonString("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  std::string out;
  {
    JsonObject o(out);
    o.num("n", 5);
    o.str("s", "x");
    o.boolean("b", true);
  }
  EXPECT_EQ(out, "{\"n\":5,\"s\":\"x\",\"b\":true}");
}

}  // namespace
}  // namespace vt
