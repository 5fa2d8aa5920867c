// NetStack's UDP path against a fake TUN owner: datagrams in from the
// packet builder (whole and fragmented), datagrams out via sendUdp with
// every IP/UDP checksum verified, and an echo round trip.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "netstack/net_stack.h"
#include "netstack/tcp_flow.h"
#include "packet_builder.h"

namespace vt::netstack {
namespace {

using test::buildUdp;
using test::fragmentPacket;
using test::ParsedPacket;
using test::parsePacket;
using test::reassemblePacket;
using Bytes = std::vector<uint8_t>;

constexpr const char* kTun4 = "198.18.0.1";
constexpr const char* kApp4 = "198.18.0.2";
constexpr const char* kTun6 = "2001:db8::1";
constexpr const char* kApp6 = "2001:db8::2";

IpAddress ip(const char* text) {
  IpAddress a;
  EXPECT_TRUE(IpAddress::parse(text, a)) << text;
  return a;
}
UdpEndpoint ep(const char* text, uint16_t port) {
  return UdpEndpoint{ip(text), port};
}

Bytes pattern(size_t n, uint32_t seed) {
  Bytes b(n);
  std::mt19937 rng(seed);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

struct Received {
  UdpEndpoint app;
  UdpEndpoint dst;
  Bytes bytes;
  size_t slices = 0;
  const uint8_t* first = nullptr;
};

class UdpOwner : public NetStack::Callbacks {
 public:
  void onOutput(const PacketView& packet) override {
    Bytes bytes;
    for (int i = 0; i < packet.iovCount; ++i) {
      const auto* b = static_cast<const uint8_t*>(packet.iov[i].iov_base);
      bytes.insert(bytes.end(), b, b + packet.iov[i].iov_len);
    }
    EXPECT_EQ(bytes.size(), packet.size);
    out.push_back(std::move(bytes));
  }
  void onTcpSyn(const FlowKey&) override {}
  void onTcpAccepted(std::unique_ptr<TcpFlow>) override {}
  void onTimerInterval(uint32_t ms) override { timerOn = ms != 0; }
  bool onUdp(const UdpEndpoint& app, const UdpEndpoint& dst, BufferChain&& payload) override {
    if (!take) return false;
    if (echo) {
      EXPECT_TRUE(stack->sendUdp(dst, app, payload));
      return true;
    }
    Received r{app, dst, payload.toVector(), payload.sliceCount(),
               payload.sliceCount() > 0 ? payload.slice(0).data() : nullptr};
    got.push_back(std::move(r));
    return true;
  }

  NetStack* stack = nullptr;
  bool take = true;
  bool echo = false;
  bool timerOn = false;
  std::vector<Bytes> out;
  std::vector<Received> got;
};

// A datagram as the app sees it, from the packets sendUdp wrote.
struct AppView {
  ParsedPacket p;
  uint16_t udpChecksum = 0;
  size_t packets = 0;
};

// Checks every packet (size, IPv4 header checksum, DF off, TTL) and the
// reassembled datagram's UDP checksum; false on any failure.
bool verifyOutput(const std::vector<Bytes>& pkts, size_t mtu, AppView& view) {
  for (const Bytes& p : pkts) {
    if (p.size() > mtu) return false;
    if ((p[0] >> 4) == 4) {
      if ((p[6] & 0x40) != 0 || p[8] != 64) return false;  // DF off, TTL 64
    } else if (p[7] != 64) {
      return false;
    }
  }
  Bytes whole;
  if (pkts.size() == 1 && (pkts[0][0] >> 4) == 4 && (pkts[0][6] & 0x3f) == 0 && pkts[0][7] == 0) {
    whole = pkts[0];
  } else if (pkts.size() == 1 && (pkts[0][0] >> 4) == 6 && pkts[0][6] == 17) {
    whole = pkts[0];
  } else if (!reassemblePacket(pkts, whole)) {
    return false;
  }
  if (!parsePacket(whole, view.p) || !view.p.checksumsOk || view.p.protocol != 17) return false;
  const size_t ipHdr = view.p.version == 4 ? 20 : 40;
  view.udpChecksum = static_cast<uint16_t>(whole[ipHdr + 6] << 8 | whole[ipHdr + 7]);
  view.packets = pkts.size();
  // Mandatory for IPv6; we always compute it for IPv4 too.
  return view.udpChecksum != 0 &&
         (size_t{whole[ipHdr + 4]} << 8 | whole[ipHdr + 5]) == 8 + view.p.payload.size();
}

class UdpTest : public ::testing::Test {
 protected:
  void SetUp() override { makeStack(NetStackOptions{}); }
  void TearDown() override { stack_.reset(); }
  void makeStack(NetStackOptions opt) {
    stack_.reset();
    opt.ipv4 = ip(kTun4);
    opt.ipv6 = ip(kTun6);
    auto r = NetStack::create(opt, owner_);
    ASSERT_TRUE(r.ok()) << r.error().toString();
    stack_ = std::move(r).value();
    owner_.stack = stack_.get();
  }
  void send(const Bytes& pkt) { stack_->input(pkt.data(), pkt.size()); }
  // Sends a payload with sendUdp and returns what the app would receive.
  AppView roundOut(const UdpEndpoint& from, const UdpEndpoint& to, const BufferChain& payload) {
    owner_.out.clear();
    EXPECT_TRUE(stack_->sendUdp(from, to, payload));
    AppView v;
    EXPECT_TRUE(verifyOutput(owner_.out, stack_->options().mtu, v))
        << from.toString() << " -> " << to.toString() << " size " << payload.size();
    return v;
  }

  UdpOwner owner_;
  std::unique_ptr<NetStack> stack_;
};

TEST_F(UdpTest, DatagramsFromTheAppReachOnUdpV4AndV6) {
  struct Case {
    const char* src;
    const char* dst;
    size_t size;
  };
  const Case cases[] = {{kApp4, "198.19.0.53", 0},    {kApp4, "198.19.0.53", 1},
                        {kApp4, "1.2.3.4", 1472},     {kApp6, "2001:db8:9::53", 0},
                        {kApp6, "2001:db8:9::53", 1}, {kApp6, "2606:4700::1", 1452}};
  uint16_t port = 40000;
  for (const Case& c : cases) {
    const Bytes payload = pattern(c.size, port);
    Bytes pkt = buildUdp(c.src, c.dst, port, 443, payload);
    EXPECT_LE(pkt.size(), 1500u);
    send(pkt);
    ASSERT_EQ(owner_.got.size(), 1u) << c.src << " " << c.size;
    const Received& r = owner_.got.back();
    EXPECT_EQ(r.app, ep(c.src, port));
    EXPECT_EQ(r.dst, ep(c.dst, 443));
    EXPECT_EQ(r.bytes, payload);
    owner_.got.clear();
    ++port;
  }
  EXPECT_EQ(stack_->stats().udpIn, 6u);
  EXPECT_EQ(stack_->stats().udpDropped, 0u);
  EXPECT_TRUE(owner_.out.empty());
  EXPECT_FALSE(stack_->timerNeeded()) << "UDP needs no timer";
}

TEST_F(UdpTest, ToTheTunsOwnAddressGoesToTheOwnerToo) {
  send(buildUdp(kApp4, kTun4, 5353, 53, {1, 2, 3}));
  send(buildUdp(kApp6, kTun6, 5353, 53, {4, 5}));
  ASSERT_EQ(owner_.got.size(), 2u);
  EXPECT_EQ(owner_.got[0].dst, ep(kTun4, 53));
  EXPECT_EQ(owner_.got[1].dst, ep(kTun6, 53));
  EXPECT_TRUE(owner_.out.empty()) << "lwIP must not answer (port unreachable)";
}

TEST_F(UdpTest, NoOwnerDropsAndCounts) {
  owner_.take = false;
  send(buildUdp(kApp4, "198.19.0.53", 5353, 53, {1}));
  EXPECT_EQ(stack_->stats().udpDropNoOwner, 1u);
  EXPECT_EQ(stack_->stats().udpDropped, 1u);
  EXPECT_EQ(stack_->stats().udpIn, 0u);
}

TEST_F(UdpTest, LargePayloadAdoptsTheInputBuffer) {
  const Bytes payload = pattern(1200, 7);
  const Bytes pkt = buildUdp(kApp4, "198.19.0.9", 1000, 2000, payload);
  InputBuffer buf = stack_->allocInput(1500);
  ASSERT_TRUE(buf.valid());
  std::memcpy(buf.data(), pkt.data(), pkt.size());
  const uint8_t* base = buf.data();
  stack_->input(std::move(buf), pkt.size());
  ASSERT_EQ(owner_.got.size(), 1u);
  EXPECT_EQ(owner_.got[0].bytes, payload);
  EXPECT_EQ(owner_.got[0].slices, 1u);
  EXPECT_EQ(owner_.got[0].first, base + 28) << "zero copy: the payload is the pbuf's bytes";
}

TEST_F(UdpTest, MalformedDatagramsAreDroppedAndCounted) {
  const Bytes good4 = buildUdp(kApp4, "198.19.0.53", 5353, 53, {1, 2, 3, 4});
  const Bytes good6 = buildUdp(kApp6, "2001:db8::53", 5353, 53, {1, 2, 3, 4});
  std::vector<Bytes> bad;
  for (const Bytes& good : {good4, good6}) {
    const size_t h = (good[0] >> 4) == 4 ? 20 : 40;
    Bytes v = good;
    v[h + 5] = 13;  // UDP length past the IP payload
    bad.push_back(v);
    v = good;
    v[h + 5] = 7;  // UDP length < 8
    bad.push_back(v);
    v = Bytes(good.begin(), good.begin() + static_cast<long>(h + 4));  // cut UDP header
    if (h == 20) {
      v[3] = 24;
      v[10] = v[11] = 0;  // header checksum is not checked
    } else {
      v[5] = 4;
    }
    bad.push_back(v);
  }
  for (const Bytes& b : bad) send(b);
  EXPECT_TRUE(owner_.got.empty());
  EXPECT_EQ(stack_->stats().udpDropMalformed, bad.size());
  EXPECT_EQ(stack_->stats().udpDropped, bad.size());

  // Padding after the UDP length is ignored, not an error.
  Bytes padded = good4;
  padded.insert(padded.end(), {0, 0, 0, 0});
  padded[3] = static_cast<uint8_t>(padded.size());
  send(padded);
  ASSERT_EQ(owner_.got.size(), 1u);
  EXPECT_EQ(owner_.got[0].bytes, (Bytes{1, 2, 3, 4}));

  send(buildUdp("0.0.0.0", "255.255.255.255", 68, 67, {1}));
  send(buildUdp(kApp4, "198.19.0.53", 0, 53, {1}));
  EXPECT_EQ(stack_->stats().udpDropBadAddress, 2u);
}

TEST_F(UdpTest, Ipv4AndIpv6FragmentsAreReassembledInAnyOrder) {
  std::mt19937 rng(99);
  const size_t sizes[] = {1473, 3000, 8192, kMaxUdpPayloadV6};
  uint32_t id = 100;
  for (const char* app : {kApp4, kApp6}) {
    const bool v4 = std::string(app) == kApp4;
    for (size_t size : sizes) {
      if (v4 && size > kMaxUdpPayloadV4) size = kMaxUdpPayloadV4;
      for (int order = 0; order < 3; ++order) {
        const Bytes payload = pattern(size, static_cast<uint32_t>(size + order));
        auto frags = fragmentPacket(
            buildUdp(app, v4 ? "198.19.1.1" : "2001:db8:5::1", 7000, 8000, payload), 1500, ++id);
        ASSERT_GE(frags.size(), 2u);
        if (order == 1) std::reverse(frags.begin(), frags.end());
        if (order == 2) std::shuffle(frags.begin(), frags.end(), rng);
        for (const Bytes& f : frags) send(f);
        ASSERT_EQ(owner_.got.size(), 1u) << app << " size " << size << " order " << order;
        EXPECT_EQ(owner_.got[0].bytes, payload);
        EXPECT_EQ(owner_.got[0].app, ep(app, 7000));
        owner_.got.clear();
      }
    }
  }
  EXPECT_EQ(stack_->stats().udpReassembled, 24u);
  EXPECT_EQ(stack_->stats().udpDropped, 0u);
  EXPECT_FALSE(stack_->timerNeeded()) << "nothing partial left";
}

TEST_F(UdpTest, Ipv6AtomicFragmentIsDelivered) {
  const Bytes payload = pattern(100, 3);
  auto frags = fragmentPacket(buildUdp(kApp6, "2001:db8::9", 1, 2, payload), 1500, 1);
  ASSERT_EQ(frags.size(), 1u);  // offset 0, M = 0: RFC 6946
  send(frags[0]);
  ASSERT_EQ(owner_.got.size(), 1u);
  EXPECT_EQ(owner_.got[0].bytes, payload);
  EXPECT_FALSE(stack_->timerNeeded());
}

TEST_F(UdpTest, DuplicateFragmentIsIgnoredOverlapDropsTheDatagram) {
  auto frags = fragmentPacket(buildUdp(kApp4, "198.19.1.1", 1, 2, pattern(4000, 1)), 1500, 5);
  ASSERT_EQ(frags.size(), 3u);
  send(frags[0]);
  send(frags[0]);
  send(frags[1]);
  send(frags[2]);
  EXPECT_EQ(owner_.got.size(), 1u);

  frags = fragmentPacket(buildUdp(kApp4, "198.19.1.1", 1, 2, pattern(4000, 1)), 1500, 6);
  Bytes overlap = frags[1];
  overlap[7] = static_cast<uint8_t>(overlap[7] - 1);  // offset 8 bytes earlier
  overlap[10] = overlap[11] = 0;
  send(frags[0]);
  send(overlap);
  send(frags[1]);
  send(frags[2]);
  EXPECT_EQ(owner_.got.size(), 1u);
  EXPECT_EQ(stack_->stats().udpDropReassembly, 1u);

  // A non-last fragment that is not a multiple of 8 bytes is malformed.
  Bytes odd = frags[0];
  odd.pop_back();
  odd[3] = static_cast<uint8_t>(odd.size());
  odd[2] = static_cast<uint8_t>(odd.size() >> 8);
  send(odd);
  EXPECT_EQ(stack_->stats().udpDropMalformed, 1u);
  stack_->onTimer();  // frags[1..2] of id 6 form a new partial; expire it
  for (int i = 0; i < 30; ++i) stack_->onTimer();
  EXPECT_FALSE(stack_->timerNeeded());
}

TEST_F(UdpTest, ReassemblyLimitsEvictTheOldestAndCount) {
  NetStackOptions opt;
  opt.udpReassemblyMaxDatagrams = 4;
  opt.udpReassemblyMaxBytes = 64 * 1024;
  makeStack(opt);
  std::vector<std::vector<Bytes>> all;
  for (uint32_t i = 0; i < 10; ++i) {
    all.push_back(fragmentPacket(
        buildUdp(kApp4, "198.19.1.1", static_cast<uint16_t>(100 + i), 2, pattern(2000, i)), 1500,
        i));
    send(all.back()[0]);
  }
  EXPECT_EQ(stack_->stats().udpReassemblyOverflow, 6u);
  // The newest 4 complete; the others were evicted and start over.
  for (size_t i = all.size(); i-- > 0;) send(all[i][1]);
  EXPECT_EQ(owner_.got.size(), 4u);
  EXPECT_EQ(owner_.got[0].app.port, 109);
  EXPECT_EQ(stack_->stats().udpReassemblyOverflow, 8u);
  owner_.got.clear();
  // Bytes: one datagram bigger than the whole budget never fits.
  NetStackOptions small;
  small.udpReassemblyMaxBytes = 4000;
  makeStack(small);
  for (const Bytes& f :
       fragmentPacket(buildUdp(kApp6, "2001:db8::9", 1, 2, pattern(9000, 3)), 1500, 77)) {
    send(f);
  }
  EXPECT_TRUE(owner_.got.empty());
  EXPECT_GE(stack_->stats().udpReassemblyOverflow, 1u);
  EXPECT_EQ(stack_->stats().udpReassembled, 0u);
}

TEST_F(UdpTest, PartialDatagramsExpireOnTheTimer) {
  auto frags = fragmentPacket(buildUdp(kApp6, "2001:db8::9", 1, 2, pattern(3000, 1)), 1500, 9);
  send(frags[0]);
  EXPECT_TRUE(owner_.timerOn);
  const uint32_t ticks = 5000 / NetStack::kIdleIntervalMs;  // no TCP: the idle period
  for (uint32_t i = 0; i < ticks; ++i) stack_->onTimer();
  EXPECT_EQ(stack_->stats().udpReassemblyTimeout, 0u) << "not before 5 s";
  stack_->onTimer();
  stack_->onTimer();
  EXPECT_EQ(stack_->stats().udpReassemblyTimeout, 1u);
  EXPECT_EQ(stack_->stats().udpDropReassembly, 1u);
  EXPECT_FALSE(owner_.timerOn);
  for (size_t i = 1; i < frags.size(); ++i) send(frags[i]);
  EXPECT_TRUE(owner_.got.empty());
  // Left partial at destruction: freed by the stack (ASan checks).
}

TEST_F(UdpTest, SendUdpFromAnySourceHasExactAddressesAndValidChecksums) {
  const UdpEndpoint app4 = ep(kApp4, 40000), app6 = ep(kApp6, 40000);
  const UdpEndpoint from4[] = {ep("8.8.8.8", 53), ep("1.1.1.1", 443), ep("203.0.113.7", 65535),
                               ep(kTun4, 53)};
  const UdpEndpoint from6[] = {ep("2001:4860:4860::8888", 53), ep("2606:4700::1111", 1),
                               ep("fe80::1", 9999)};
  const size_t sizes[] = {0, 1, 2, 3, 1452, 1453, 1472, 1473, 4000, 65507, 65527};
  for (size_t size : sizes) {
    const Bytes payload = pattern(size, static_cast<uint32_t>(size));
    BufferChain chain;
    chain.append(payload.data(), payload.size());
    for (bool v6 : {false, true}) {
      if (!v6 && size > kMaxUdpPayloadV4) continue;
      for (const UdpEndpoint& from :
           v6 ? std::vector<UdpEndpoint>(std::begin(from6), std::end(from6))
              : std::vector<UdpEndpoint>(std::begin(from4), std::end(from4))) {
        const UdpEndpoint& to = v6 ? app6 : app4;
        AppView v = roundOut(from, to, chain);
        EXPECT_EQ(v.p.src, from.addr.toString());
        EXPECT_EQ(v.p.dst, to.addr.toString());
        EXPECT_EQ(v.p.srcPort, from.port);
        EXPECT_EQ(v.p.dstPort, to.port);
        EXPECT_EQ(v.p.payload, payload);
        const size_t limit = v6 ? 1452 : 1472;
        EXPECT_EQ(v.packets > 1, size > limit) << size;
      }
    }
  }
  EXPECT_GT(stack_->stats().udpOutFragments, 0u);
}

TEST_F(UdpTest, SendUdpChecksumEdgeCasesAndSlices) {
  // A payload that makes the sum come out 0 must be sent as 0xffff.
  for (bool v6 : {false, true}) {
    const UdpEndpoint from = v6 ? ep("2001:db8:1::1", 1000) : ep("10.9.8.7", 1000);
    const UdpEndpoint to = v6 ? ep(kApp6, 2000) : ep(kApp4, 2000);
    BufferChain zero;
    zero.append(Bytes{0, 0});
    AppView v = roundOut(from, to, zero);
    BufferChain fix;
    fix.append(
        Bytes{static_cast<uint8_t>(v.udpChecksum >> 8), static_cast<uint8_t>(v.udpChecksum)});
    v = roundOut(from, to, fix);
    EXPECT_EQ(v.udpChecksum, 0xffff);
  }
  // Odd-sized slices (the sum straddles them) and more slices than iovecs.
  for (size_t count : {3u, 70u, 200u}) {
    BufferChain chain;
    Bytes all;
    for (size_t i = 0; i < count; ++i) {
      Bytes part = pattern(1 + i % 7, static_cast<uint32_t>(i));
      all.insert(all.end(), part.begin(), part.end());
      chain.append(Slice::copyOf(part.data(), part.size()));
    }
    ASSERT_EQ(chain.sliceCount(), count);
    AppView v = roundOut(ep("192.0.2.1", 7), ep(kApp4, 8), chain);
    EXPECT_EQ(v.p.payload, all);
    v = roundOut(ep("2001:db8::7", 7), ep(kApp6, 8), chain);
    EXPECT_EQ(v.p.payload, all);
  }
}

TEST_F(UdpTest, SendUdpRefusals) {
  BufferChain big;
  big.append(Bytes(kMaxUdpPayloadV4 + 1, 1));
  EXPECT_FALSE(stack_->sendUdp(ep("8.8.8.8", 53), ep(kApp4, 1), big));
  EXPECT_TRUE(stack_->sendUdp(ep("2001:db8::8", 53), ep(kApp6, 1), big));
  big.append(Bytes(kMaxUdpPayloadV6 - kMaxUdpPayloadV4, 1));
  EXPECT_FALSE(stack_->sendUdp(ep("2001:db8::8", 53), ep(kApp6, 1), big));
  EXPECT_EQ(stack_->stats().udpOutTooBig, 2u);
  BufferChain small;
  small.append(Bytes{1});
  EXPECT_FALSE(stack_->sendUdp(ep("2001:db8::8", 53), ep(kApp4, 1), small));
  EXPECT_FALSE(stack_->sendUdp(ep("8.8.8.8", 53), ep(kApp6, 1), small));
  EXPECT_FALSE(stack_->sendUdp(ep("8.8.8.8", 0), ep(kApp4, 1), small));
  EXPECT_EQ(stack_->stats().udpOutRefused, 3u);
  // IPv4-mapped source to an IPv4 app: sent as IPv4 from 8.8.4.4.
  AppView v = roundOut(ep("::ffff:8.8.4.4", 53), ep(kApp4, 1), small);
  EXPECT_EQ(v.p.version, 4);
  EXPECT_EQ(v.p.src, "8.8.4.4");
}

TEST_F(UdpTest, EchoTenThousandDatagramsIntactAndInCount) {
  owner_.echo = true;
  std::mt19937 rng(2024);
  size_t checked = 0;
  for (int i = 0; i < 10000; ++i) {
    const bool v6 = (i % 2) == 1;
    const size_t size = rng() % ((v6 ? 1452u : 1472u) + 1);
    const Bytes payload = pattern(size, static_cast<uint32_t>(i));
    std::string remote =
        v6 ? "2001:db8:" + std::to_string(1 + rng() % 9000) +
                 "::" + std::to_string(1 + rng() % 9000)
           : "198.51." + std::to_string(rng() % 256) + "." + std::to_string(1 + rng() % 254);
    const uint16_t rport = static_cast<uint16_t>(1 + rng() % 65535);
    const uint16_t aport = static_cast<uint16_t>(1024 + i % 64);
    owner_.out.clear();
    send(buildUdp(v6 ? kApp6 : kApp4, remote, aport, rport, payload));
    ASSERT_EQ(owner_.out.size(), 1u) << i;
    AppView v;
    ASSERT_TRUE(verifyOutput(owner_.out, 1500, v)) << i;
    ASSERT_EQ(v.p.src, ip(remote.c_str()).toString());
    ASSERT_EQ(v.p.srcPort, rport);
    ASSERT_EQ(v.p.dst, v6 ? kApp6 : kApp4);
    ASSERT_EQ(v.p.dstPort, aport);
    ASSERT_EQ(v.p.payload, payload) << i;
    ++checked;
  }
  EXPECT_EQ(checked, 10000u);
  EXPECT_EQ(stack_->stats().udpIn, 10000u);
  EXPECT_EQ(stack_->stats().udpOut, 10000u);
  EXPECT_EQ(stack_->stats().udpDropped, 0u);
}

TEST_F(UdpTest, EchoLargeDatagramsFragmentedBothWays) {
  owner_.echo = true;
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    const bool v6 = (i % 2) == 1;
    const size_t size = 1400 + rng() % 20000;
    const Bytes payload = pattern(size, static_cast<uint32_t>(i));
    owner_.out.clear();
    for (const Bytes& f : fragmentPacket(
             buildUdp(v6 ? kApp6 : kApp4, v6 ? "2001:db8::77" : "9.9.9.9", 5000, 53, payload), 1500,
             static_cast<uint32_t>(i))) {
      send(f);
    }
    AppView v;
    ASSERT_TRUE(verifyOutput(owner_.out, 1500, v)) << i;
    ASSERT_EQ(v.p.payload, payload);
  }
  EXPECT_EQ(stack_->stats().udpOut, 300u);
  EXPECT_EQ(stack_->stats().udpDropped, 0u);
}

}  // namespace
}  // namespace vt::netstack

namespace vt::netstack {
namespace {

TEST_F(UdpTest, RandomMutationsOfDatagramsAndFragmentsDoNotCrash) {
  std::mt19937 rng(4242);
  NetStackOptions opt;
  opt.udpReassemblyMaxDatagrams = 8;
  opt.udpReassemblyMaxBytes = 32 * 1024;
  makeStack(opt);
  owner_.echo = true;
  for (int i = 0; i < 4000; ++i) {
    const bool v6 = (i % 2) == 1;
    const Bytes payload = pattern(rng() % 5000, static_cast<uint32_t>(i));
    auto pkts = fragmentPacket(buildUdp(v6 ? kApp6 : kApp4, v6 ? "2001:db8::5" : "9.9.9.9",
                                        static_cast<uint16_t>(rng()), 53, payload),
                               1280 + rng() % 300, rng() % 4);  // ids collide on purpose
    for (Bytes& p : pkts) {
      const int mutations = static_cast<int>(rng() % 4);
      for (int k = 0; k < mutations; ++k) p[rng() % p.size()] = static_cast<uint8_t>(rng());
      if (rng() % 8 == 0) p.resize(rng() % p.size() + 1);
      if (rng() % 3 != 0) send(p);
    }
    if (i % 100 == 0) stack_->onTimer();
  }
  EXPECT_GT(stack_->stats().udpOut, 0u);
}

}  // namespace
}  // namespace vt::netstack
