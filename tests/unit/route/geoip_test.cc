#include "route/geoip.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#ifndef VT_SOURCE_DIR
#error "VT_SOURCE_DIR must name the source tree (tests/unit/route/CMakeLists.txt)"
#endif

namespace vt::route {
namespace {

std::string tempPath(const std::string& name) {
  return testing::TempDir() + "vt-geoip-" + std::to_string(getpid()) + "-" + name;
}

// Writes a database with the project's own writer, so the test needs no
// downloaded GeoLite2 file; every argument is a plain CIDR=CC word.
bool writeDb(const std::string& path, const std::string& args, int record_size) {
  std::string cmd = std::string("python3 \"") + VT_SOURCE_DIR +
                    "/tests/integration/tools/mmdb_write.py\" --record-size " +
                    std::to_string(record_size) + " \"" + path + "\" " + args;
  int rc = std::system(cmd.c_str());
  return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

const char kEntries[] =
    "198.18.1.0/24=ZZ 2001:db8:1::/48=ZZ 198.18.3.0/24=YY 198.18.4.0/24=de "
    "198.18.5.0/24=r:QQ 10.0.0.0/8=AA 10.1.0.0/16=BB 2001:db8:2:5::/64=CC";

IpAddress ip(const char* text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(IpAddress{});
}

// One database per record size, written once (a Python start is the
// slow part of these tests) and opened afresh by each test.
class GeoIpTest : public testing::TestWithParam<int> {
 protected:
  static void TearDownTestSuite() {
    for (const std::string& p : written_) std::remove(p.c_str());
    written_.clear();
  }

  void SetUp() override {
    const std::string path = tempPath("r" + std::to_string(GetParam()) + ".mmdb");
    bool have = false;
    for (const std::string& p : written_) have = have || p == path;
    if (!have) {
      ASSERT_TRUE(writeDb(path, kEntries, GetParam()));
      written_.push_back(path);
    }
    auto g = GeoIp::open(path);
    ASSERT_TRUE(g) << g.error().message;
    geo_ = std::move(g).value();
  }

  std::string country(const char* text) {
    char buf[3];
    std::string_view c = geo_->country(ip(text), buf);
    if (!c.empty()) {
      EXPECT_EQ(c.data(), buf);
    }
    return std::string(c);
  }

  static inline std::vector<std::string> written_;
  std::unique_ptr<GeoIp> geo_;
};

TEST_P(GeoIpTest, Ipv4) {
  EXPECT_EQ(country("198.18.1.0"), "ZZ");
  EXPECT_EQ(country("198.18.1.255"), "ZZ");
  EXPECT_EQ(country("198.18.3.77"), "YY");
  // The longer prefix inside a shorter one wins, and the rest of the
  // shorter one keeps its country.
  EXPECT_EQ(country("10.1.2.3"), "BB");
  EXPECT_EQ(country("10.0.2.3"), "AA");
  EXPECT_EQ(country("10.255.255.255"), "AA");
  EXPECT_EQ(geo_->lookupErrors(), 0u);
}

TEST_P(GeoIpTest, Ipv6) {
  EXPECT_EQ(country("2001:db8:1::1"), "ZZ");
  EXPECT_EQ(country("2001:db8:1:ffff:ffff:ffff:ffff:ffff"), "ZZ");
  EXPECT_EQ(country("2001:db8:2:5::9"), "CC");
  EXPECT_EQ(geo_->lookupErrors(), 0u);
}

TEST_P(GeoIpTest, Ipv4MappedIsIpv4) {
  EXPECT_EQ(country("::ffff:198.18.3.4"), "YY");
  EXPECT_EQ(country("::ffff:10.1.0.1"), "BB");
  EXPECT_EQ(country("::ffff:198.18.2.1"), "");
}

TEST_P(GeoIpTest, MissIsEmpty) {
  char buf[3] = {'x', 'x', 'x'};
  EXPECT_TRUE(geo_->country(ip("198.18.2.1"), buf).empty());
  EXPECT_EQ(buf[0], '\0');
  EXPECT_EQ(country("8.8.8.8"), "");
  EXPECT_EQ(country("2001:db8:2::1"), "");  // beside the /64
  EXPECT_EQ(country("2001:db8:3::1"), "");
  EXPECT_EQ(country("::1"), "");
  EXPECT_EQ(geo_->lookupErrors(), 0u);
}

TEST_P(GeoIpTest, CaseAndRegisteredCountry) {
  EXPECT_EQ(country("198.18.4.1"), "DE");  // stored as "de"
  // No country, only registered_country: that one.
  EXPECT_EQ(country("198.18.5.1"), "QQ");
}

TEST_P(GeoIpTest, Describe) {
  std::string d = geo_->describe();
  EXPECT_NE(d.find("\"vless-tun-test\""), std::string::npos) << d;
  EXPECT_NE(d.find("nodes, IPv6, built 20"), std::string::npos) << d;
}

TEST_P(GeoIpTest, ConcurrentLookups) {
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const IpAddress a = ip(t % 2 ? "198.18.3.9" : "2001:db8:1::9");
      const char* want = t % 2 ? "YY" : "ZZ";
      char buf[3];
      for (int i = 0; i < 20000; ++i) {
        if (geo_->country(a, buf) != want) ++wrong[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int w : wrong) EXPECT_EQ(w, 0);
}

INSTANTIATE_TEST_SUITE_P(RecordSizes, GeoIpTest, testing::Values(24, 28, 32));

TEST(GeoIp, OpenErrorsNameThePath) {
  const std::string missing = tempPath("missing.mmdb");
  auto r = GeoIp::open(missing);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kConfig);
  EXPECT_EQ(r.error().message.rfind("geoip database \"" + missing + "\": ", 0), 0u)
      << r.error().message;
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos) << r.error().message;

  const std::string garbage = tempPath("garbage.mmdb");
  {
    std::ofstream f(garbage, std::ios::binary);
    f << std::string(4096, 'x');
  }
  r = GeoIp::open(garbage);
  std::remove(garbage.c_str());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kConfig);
  EXPECT_EQ(r.error().message.rfind("geoip database \"" + garbage + "\": ", 0), 0u)
      << r.error().message;
}

TEST(GeoIp, CorruptRecordReadsEmptyAndIsCounted) {
  // The open checks only the metadata; a broken data record shows at lookup.
  const std::string path = tempPath("corrupt.mmdb");
  ASSERT_TRUE(writeDb(path, "198.18.1.0/24=ZZ 198.18.2.0/24=YY", 24));
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  // ZZ's record {"country": ...} starts with a 1-pair map (0xe1) and the
  // 7-byte key (0x47): made a 4-byte pointer far past the end of the file.
  const std::string map_and_key = std::string("\xe1\x47") + "country";
  size_t at = bytes.find(map_and_key);
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 5, "\x38\xff\xff\xff\xff");
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << bytes;
  }
  auto g = GeoIp::open(path);
  std::remove(path.c_str());
  ASSERT_TRUE(g) << g.error().message;
  char buf[3];
  EXPECT_TRUE(g.value()->country(ip("198.18.1.1"), buf).empty());
  EXPECT_GE(g.value()->lookupErrors(), 1u);
  const uint64_t errors = g.value()->lookupErrors();
  EXPECT_EQ(g.value()->country(ip("198.18.2.1"), buf), "YY");  // the rest still reads
  EXPECT_EQ(g.value()->lookupErrors(), errors);
}

TEST(GeoIp, EmptyDatabaseFindsNothing) {
  const std::string path = tempPath("empty.mmdb");
  ASSERT_TRUE(writeDb(path, "", 24));
  auto g = GeoIp::open(path);
  std::remove(path.c_str());  // mapped: the pages stay valid
  ASSERT_TRUE(g) << g.error().message;
  char buf[3];
  EXPECT_TRUE(g.value()->country(ip("198.18.1.1"), buf).empty());
  EXPECT_TRUE(g.value()->country(ip("2001:db8::1"), buf).empty());
  EXPECT_EQ(g.value()->lookupErrors(), 0u);
}

}  // namespace
}  // namespace vt::route
