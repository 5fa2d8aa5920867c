// NetStack's raw-packet hook for CmdIP: which packets go to
// Callbacks::onOtherPacket (protocols other than TCP/UDP, their fragments,
// and everything to NetStackOptions::passthrough) and which stay with lwIP
// or the UDP path.
#include <gtest/gtest.h>

#include "netstack/net_stack.h"
#include "netstack/tcp_flow.h"
#include "packet_builder.h"

namespace vt::netstack {
namespace {

constexpr const char* kTun4 = "198.18.0.1";
constexpr const char* kApp4 = "198.18.0.2";
constexpr const char* kTun6 = "2001:db8::1";
constexpr const char* kApp6 = "2001:db8::2";

IpAddress ip(const char* text) {
  IpAddress a;
  EXPECT_TRUE(IpAddress::parse(text, a)) << text;
  return a;
}

class RawOwner final : public NetStack::Callbacks {
 public:
  void onOutput(const PacketView& packet) override {
    std::vector<uint8_t> bytes;
    for (int i = 0; i < packet.iovCount; ++i) {
      const auto* b = static_cast<const uint8_t*>(packet.iov[i].iov_base);
      bytes.insert(bytes.end(), b, b + packet.iov[i].iov_len);
    }
    out.push_back(std::move(bytes));
  }
  void onTcpSyn(const FlowKey& key) override { syns.push_back(key); }
  void onTcpAccepted(std::unique_ptr<TcpFlow>) override {}
  void onTimerInterval(uint32_t) override {}
  bool onOtherPacket(const uint8_t* packet, size_t len) override {
    if (!take) return false;
    other.emplace_back(packet, packet + len);
    return true;
  }
  bool onUdp(const UdpEndpoint&, const UdpEndpoint& dst, BufferChain&&) override {
    udp.push_back(dst);
    return true;
  }

  bool take = true;
  std::vector<std::vector<uint8_t>> out;
  std::vector<std::vector<uint8_t>> other;
  std::vector<FlowKey> syns;
  std::vector<UdpEndpoint> udp;
};

class NetStackRawTest : public ::testing::Test {
 protected:
  void TearDown() override { stack_.reset(); }
  void make(std::vector<const char*> passthrough = {}) {
    stack_.reset();
    NetStackOptions opt;
    opt.ipv4 = ip(kTun4);
    opt.ipv6 = ip(kTun6);
    for (const char* p : passthrough) {
      auto pfx = IpPrefix::parse(p);
      ASSERT_TRUE(pfx) << p;
      opt.passthrough.push_back(*pfx);
    }
    auto r = NetStack::create(opt, owner_);
    ASSERT_TRUE(r.ok()) << r.error().toString();
    stack_ = std::move(r).value();
  }
  void send(const std::vector<uint8_t>& pkt) { stack_->input(pkt.data(), pkt.size()); }
  static std::vector<uint8_t> syn(const char* src, const char* dst, uint16_t port) {
    return test::buildTcp(test::TcpSegment{src, dst, 40000, port, 1, 0, test::kSyn, 65535, 0, {}});
  }
  // An IPv4 packet of protocol `proto` with `payload` bytes of zeros.
  static std::vector<uint8_t> raw4(const char* src, const char* dst, uint8_t proto, size_t payload) {
    std::vector<uint8_t> p = test::buildEcho(src, dst, 1, 1);
    p.resize(20 + payload, 0);
    p[2] = static_cast<uint8_t>(p.size() >> 8);
    p[3] = static_cast<uint8_t>(p.size());
    p[9] = proto;
    return p;
  }

  RawOwner owner_;
  std::unique_ptr<NetStack> stack_;
};

TEST_F(NetStackRawTest, OtherProtocolsGoToTheOwnerEchoToOwnAddressStaysLocal) {
  make();
  send(test::buildEcho(kApp4, "198.19.9.9", 1, 1));
  send(test::buildEcho(kApp6, "2001:db8:9::9", 1, 1));
  send(raw4(kApp4, "198.19.9.9", 253, 16));  // a protocol lwIP never sees
  EXPECT_EQ(owner_.other.size(), 3u);
  EXPECT_TRUE(owner_.out.empty());
  EXPECT_EQ(owner_.other[2].size(), 36u) << "the whole packet, as sent";
  EXPECT_EQ(owner_.other[2][9], 253);

  send(test::buildEcho(kApp4, kTun4, 7, 3));  // lwIP answers, the owner is not asked
  send(test::buildEcho(kApp6, kTun6, 7, 3));
  EXPECT_EQ(owner_.other.size(), 3u);
  ASSERT_EQ(owner_.out.size(), 2u);
  test::ParsedPacket r;
  ASSERT_TRUE(test::parsePacket(owner_.out[0], r));
  EXPECT_EQ(r.icmpType, 0);
  EXPECT_EQ(r.dst, kApp4);

  // TCP and UDP still go their own ways.
  send(syn(kApp4, "198.19.9.9", 80));
  send(test::buildUdp(kApp4, "198.19.9.9", 5353, 53, {1, 2, 3}));
  EXPECT_EQ(owner_.syns.size(), 1u);
  EXPECT_EQ(owner_.udp.size(), 1u);
  EXPECT_EQ(owner_.other.size(), 3u);
  EXPECT_EQ(stack_->stats().otherOffered, 3u);
  EXPECT_EQ(stack_->stats().passthrough, 0u);
  EXPECT_EQ(stack_->stats().otherDropped, 0u);
}

TEST_F(NetStackRawTest, RefusedPacketsAreCountedAsDropped) {
  make();
  owner_.take = false;
  send(test::buildEcho(kApp4, "198.19.9.9", 1, 1));
  EXPECT_EQ(stack_->stats().otherOffered, 1u);
  EXPECT_EQ(stack_->stats().otherDropped, 1u);
  EXPECT_TRUE(owner_.out.empty()) << "no local fake reply";
}

TEST_F(NetStackRawTest, FragmentsOfOtherProtocolsGoToTheOwnerTcpFragmentsDoNot) {
  make();
  const auto big = raw4(kApp4, "198.19.9.9", 1, 3000);  // a large ping
  const auto frags = test::fragmentPacket(big, 1280, 77);
  ASSERT_GE(frags.size(), 3u);
  for (const auto& f : frags) send(f);
  EXPECT_EQ(owner_.other.size(), frags.size());
  auto tcpFrag = syn(kApp4, "198.19.0.1", 80);
  tcpFrag[6] = 0x20;  // MF
  send(tcpFrag);
  EXPECT_EQ(owner_.other.size(), frags.size());
  EXPECT_TRUE(owner_.syns.empty());
  EXPECT_EQ(stack_->stats().fragments, frags.size() + 1);
}

TEST_F(NetStackRawTest, PassthroughTakesEveryProtocolBeforeTcpAndUdp) {
  make({"198.19.5.0/24", "2001:db8:5::/48", "198.18.0.0/24"});
  send(syn(kApp4, "198.19.5.1", 80));
  send(test::buildUdp(kApp4, "198.19.5.1", 5353, 53, {1, 2, 3}));
  send(test::buildUdp(kApp6, "2001:db8:5::7", 5353, 53, {1}));
  send(syn(kApp6, "2001:db8:5::7", 443));
  send(test::buildEcho(kApp4, "198.19.5.9", 1, 1));
  EXPECT_TRUE(owner_.syns.empty()) << "lwIP never saw the SYNs";
  EXPECT_TRUE(owner_.udp.empty()) << "nor the UDP path the datagrams";
  EXPECT_TRUE(owner_.out.empty());
  ASSERT_EQ(owner_.other.size(), 5u);
  EXPECT_EQ(stack_->stats().passthrough, 5u);
  EXPECT_EQ(stack_->stats().otherOffered, 5u);

  // Outside the set: as before.
  send(syn(kApp4, "198.19.6.1", 80));
  send(test::buildUdp(kApp4, "198.19.6.1", 5353, 53, {1}));
  send(syn(kApp6, "2001:db8:6::1", 80));
  EXPECT_EQ(owner_.syns.size(), 2u);
  EXPECT_EQ(owner_.udp.size(), 1u);
  EXPECT_EQ(owner_.other.size(), 5u);

  // The TUN's own address stays local even inside a passthrough prefix.
  send(test::buildEcho(kApp4, kTun4, 7, 3));
  EXPECT_EQ(owner_.out.size(), 1u);
  EXPECT_EQ(stack_->stats().passthrough, 5u);
  // ... while its neighbours in the prefix go through.
  send(test::buildUdp(kApp4, "198.18.0.9", 5353, 53, {1}));
  EXPECT_EQ(stack_->stats().passthrough, 6u);
  EXPECT_EQ(owner_.udp.size(), 1u);
}

TEST_F(NetStackRawTest, PassthroughRefusedIsDroppedNotHandedToLwip) {
  make({"198.19.5.0/24"});
  owner_.take = false;
  send(syn(kApp4, "198.19.5.1", 80));
  EXPECT_TRUE(owner_.syns.empty());
  EXPECT_TRUE(owner_.out.empty());
  EXPECT_EQ(stack_->stats().otherDropped, 1u);
  EXPECT_EQ(stack_->stats().passthrough, 1u);
}

}  // namespace
}  // namespace vt::netstack
