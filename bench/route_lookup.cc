// route_bench: how fast vt::route::RuleSet answers, at the size of a large
// community rule list (100,000 rules), and what the index costs.
//
//   flock /tmp/vt-build.lock cmake --build build/release --target route_bench
//   build/release/tests/unit/route/route_bench [rules] [seconds-per-case]
//
// Rules: 40% IPv4 CIDRs (/12-/24), 30% IPv6 CIDRs (/20-/64 in 2000::/3),
// the rest domain suffixes, with 0.5% keywords and 10 regexes spread
// through the list; one rule in ten also carries a port condition. Half of
// the queried addresses and names are drawn from inside the rules (hits),
// half at random (mostly misses, the expensive case: every keyword and
// regex is tried). Prints one table; the figures in docs/performance.md
// ("Rule lookups") come from it.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/ip_prefix.h"
#include "route/rule_set.h"

namespace {

using Clock = std::chrono::steady_clock;
using vt::route::IpAddress;
using vt::route::Network;
using vt::route::Query;
using vt::route::RuleSet;
using vt::route::RuleSetSpec;
using vt::route::RuleSpec;

long rssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long size = 0, resident = 0;
  if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

std::string randomLabel(std::mt19937_64& rng, unsigned min_len, unsigned max_len) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  unsigned len = min_len + static_cast<unsigned>(rng() % (max_len - min_len + 1));
  std::string s;
  for (unsigned i = 0; i < len; ++i) s += kChars[rng() % 36];
  return s;
}

std::string randomDomain(std::mt19937_64& rng) {
  static const char* kTlds[] = {"com", "net", "org", "io", "cn", "de", "ru", "co.uk"};
  std::string d = randomLabel(rng, 3, 12) + "." + kTlds[rng() % 8];
  if (rng() % 3 == 0) d = randomLabel(rng, 2, 8) + "." + d;
  return d;
}

vt::IpPrefix randomPrefix(std::mt19937_64& rng, bool v6) {
  vt::IpPrefix p;
  p.v6 = v6;
  p.bits = static_cast<uint8_t>(v6 ? 20 + rng() % 45 : 12 + rng() % 13);
  for (auto& b : p.addr) b = static_cast<uint8_t>(rng());
  if (v6) p.addr[0] = static_cast<uint8_t>(0x20 | (p.addr[0] & 0x1f));  // 2000::/3
  for (unsigned bit = p.bits; bit < (v6 ? 128u : 32u); ++bit) {
    p.addr[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  if (!v6) std::fill(p.addr.begin() + 4, p.addr.end(), 0);
  return p;
}

// An address inside `p` (random host bits), or a random one of its family.
IpAddress randomAddress(std::mt19937_64& rng, const vt::IpPrefix* p, bool v6) {
  IpAddress a;
  a.v6 = v6;
  for (auto& b : a.bytes) b = static_cast<uint8_t>(rng());
  if (v6) a.bytes[0] = static_cast<uint8_t>(0x20 | (a.bytes[0] & 0x1f));
  if (p != nullptr) {
    for (unsigned bit = 0; bit < p->bits; ++bit) {
      uint8_t m = static_cast<uint8_t>(0x80 >> (bit % 8));
      a.bytes[bit / 8] = static_cast<uint8_t>((a.bytes[bit / 8] & ~m) | (p->addr[bit / 8] & m));
    }
  }
  if (!v6) std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
  return a;
}

struct Case {
  const char* name;
  std::vector<Query> queries;
};

}  // namespace

int main(int argc, char** argv) {
  const size_t n_rules = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100000;
  const double seconds = argc > 2 ? std::strtod(argv[2], nullptr) : 1.0;
  std::mt19937_64 rng(20261203);

  RuleSetSpec spec;
  spec.rules.resize(n_rules);
  std::vector<vt::IpPrefix> v4s, v6s;
  std::vector<std::string> suffixes;
  size_t n_v4 = 0, n_v6 = 0, n_suffix = 0, n_keyword = 0, n_regex = 0;
  static const char* kRegexes[] = {"^ad[sv]?[0-9]*\\.",      "track(er|ing)?[0-9]+\\.",
                                   "^[a-z]+-cdn[0-9]{2}\\.", "\\.(xyz|top|click)$",
                                   "^telemetry\\.",          "metrics?[0-9]*\\.[a-z]+\\.net$",
                                   "^[0-9]+\\.[0-9]+\\.",    "beacon",
                                   "^pixel[0-9]*\\.",        "analytics[a-z]*\\."};
  const size_t regex_every = n_rules / 10 > 0 ? n_rules / 10 : 1;
  for (size_t i = 0; i < n_rules; ++i) {
    RuleSpec& r = spec.rules[i];
    r.action = i % 3 == 0 ? "direct" : (i % 3 == 1 ? "proxy" : "block");
    if (i % regex_every == regex_every / 2 && n_regex < 10) {
      r.domain_regex = {kRegexes[n_regex++]};
    } else if (rng() % 200 == 0) {
      r.domain_keyword = {randomLabel(rng, 5, 8)};
      ++n_keyword;
    } else {
      unsigned kind = static_cast<unsigned>(rng() % 10);
      if (kind < 4) {
        v4s.push_back(randomPrefix(rng, false));
        r.ip_cidr = {v4s.back().toString()};
        ++n_v4;
      } else if (kind < 7) {
        v6s.push_back(randomPrefix(rng, true));
        r.ip_cidr = {v6s.back().toString()};
        ++n_v6;
      } else {
        suffixes.push_back(randomDomain(rng));
        r.domain_suffix = {suffixes.back()};
        ++n_suffix;
      }
    }
    if (rng() % 10 == 0) r.port = {"443", "8000-8999"};
  }

  // Queries first, so that their memory is not counted as the index's.
  Case cases[4] = {
      {"IPv4 address", {}}, {"IPv6 address", {}}, {"domain name", {}}, {"name + IPv4", {}}};
  std::vector<std::string> names;
  const size_t n_queries = 1 << 16;
  names.reserve(2 * n_queries);
  for (size_t i = 0; i < n_queries; ++i) {
    bool hit = i % 2 == 0;
    uint16_t port = static_cast<uint16_t>(rng() % 2 ? 443 : 1024 + rng() % 60000);
    Network net = rng() % 4 ? Network::kTcp : Network::kUdp;
    auto pick = [&](const std::vector<vt::IpPrefix>& v) {
      return hit && !v.empty() ? &v[rng() % v.size()] : nullptr;
    };
    Query a{randomAddress(rng, pick(v4s), false), {}, port, net};
    Query b{randomAddress(rng, pick(v6s), true), {}, port, net};
    cases[0].queries.push_back(a);
    cases[1].queries.push_back(b);
    names.push_back(hit && !suffixes.empty()
                        ? randomLabel(rng, 1, 10) + "." + suffixes[rng() % suffixes.size()]
                        : randomLabel(rng, 1, 10) + "." + randomDomain(rng));
  }
  for (size_t i = 0; i < n_queries; ++i) {
    Query c = cases[0].queries[i];
    c.ip.reset();
    c.domain = names[i];
    cases[2].queries.push_back(c);
    Query d = cases[0].queries[(i * 7919) % n_queries];
    d.domain = names[i];
    cases[3].queries.push_back(d);
  }

  long rss0 = rssBytes();
  auto t0 = Clock::now();
  auto built = RuleSet::build(spec);
  auto t1 = Clock::now();
  long rss1 = rssBytes();
  if (!built) {
    std::fprintf(stderr, "build failed: %s\n", built.error().message.c_str());
    return 1;
  }
  const RuleSet& set = built.value();
  std::printf("rules %zu: %zu IPv4 CIDR, %zu IPv6 CIDR, %zu suffix, %zu keyword, %zu regex\n",
              n_rules, n_v4, n_v6, n_suffix, n_keyword, n_regex);
  std::printf("build %.0f ms, RSS +%.1f MiB (index estimate %.1f MiB)\n",
              std::chrono::duration<double, std::milli>(t1 - t0).count(), (rss1 - rss0) / 1048576.0,
              set.memoryBytes() / 1048576.0);
  std::printf("\n| query | lookups/s | ns/lookup | matched a rule |\n|---|---:|---:|---:|\n");
  uint64_t sink = 0;
  for (Case& c : cases) {
    size_t done = 0, matched = 0;
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration<double>(seconds);
    while (Clock::now() < deadline) {
      for (size_t i = 0; i < 4096; ++i) {
        vt::route::Decision d = set.match(c.queries[(done + i) % c.queries.size()]);
        sink += d.rule;
        matched += d.matchedRule() ? 1 : 0;
      }
      done += 4096;
    }
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("| %s | %.0f | %.0f | %.0f%% |\n", c.name, done / secs, secs * 1e9 / done,
                100.0 * matched / done);
  }
  std::printf("\n(checksum %llu)\n", static_cast<unsigned long long>(sink));
  return 0;
}
