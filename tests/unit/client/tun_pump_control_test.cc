// TunPump's EAGAIN backlog: control packets (SYN, FIN, RST without payload)
// have their own room, so a burst of them survives a full TUN queue while
// data stays bounded. The "TUN" is a non-blocking AF_UNIX datagram
// socketpair (one read = one packet) whose kernel queue is filled first.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client/tun_pump.h"
#include "event/loop.h"
#include "netstack/net_stack.h"
#include "unit/client/null_stack_owner.h"
#include "unit/netstack/packet_builder.h"

namespace vt::client {
namespace {

using test::kAck;
using test::kFin;
using test::kPsh;
using test::kRst;
using test::kSyn;

using NullOwner = test_support::NullStackOwner;

std::vector<uint8_t> segment(bool v6, uint8_t flags, uint32_t seq, size_t payload = 0,
                             uint16_t mss = 0) {
  test::TcpSegment s;
  s.src = v6 ? "2001:db8:1::2" : "198.18.1.2";
  s.dst = v6 ? "2001:db8:2::1" : "198.18.2.1";
  s.srcPort = 80;
  s.dstPort = 40000;
  s.seq = seq;
  s.ack = 7;
  s.flags = flags;
  s.mss = mss;
  s.payload.assign(payload, static_cast<uint8_t>('a' + seq % 26));
  return test::buildTcp(s);
}

void pumpWrite(TunPump& pump, const std::vector<uint8_t>& pkt) {
  iovec iov{const_cast<uint8_t*>(pkt.data()), pkt.size()};
  pump.writePacket(netstack::PacketView{&iov, 1, pkt.size()});
}

class TunPumpControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, fds_), 0);
    auto r = netstack::NetStack::create(netstack::NetStackOptions{}, owner_);
    ASSERT_TRUE(r.ok()) << r.error().toString();
    stack_ = std::move(r).value();
    pump_ = std::make_unique<TunPump>(loop_, fds_[0], *stack_, 1500);
    ASSERT_TRUE(pump_->start().ok());
    // Fill the kernel's queue: from now on every write gets EAGAIN.
    const uint8_t filler[64] = {};
    while (::send(fds_[0], filler, sizeof filler, 0) > 0) ++fill_;
    ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK);
    ASSERT_GT(fill_, 0u);
    fillerLeft_ = fill_;
  }
  void TearDown() override {
    if (pump_) pump_->stop();
    pump_.reset();
    stack_.reset();
    for (int i = 0; i < 20; ++i) loop_.runOnce(false);  // close the poll handle
    ::close(fds_[0]);
    ::close(fds_[1]);
  }

  // Reads the "app" side until `want` packets (after the filler) arrived
  // (or 10 s passed), running the loop so the pump flushes its backlog.
  std::vector<std::vector<uint8_t>> drain(size_t want) {
    std::vector<std::vector<uint8_t>> got;
    size_t& fillerLeft = fillerLeft_;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
      uint8_t buf[2048];
      ssize_t n;
      bool progress = false;
      while ((n = ::recv(fds_[1], buf, sizeof buf, 0)) > 0) {
        progress = true;
        if (fillerLeft > 0) {
          --fillerLeft;
          continue;
        }
        got.emplace_back(buf, buf + n);
      }
      loop_.runOnce(false);
      if (!progress) usleep(200);
    }
    // Nothing more may come: the backlog is empty.
    for (int i = 0; i < 5; ++i) loop_.runOnce(false);
    uint8_t buf[2048];
    ssize_t n;
    while ((n = ::recv(fds_[1], buf, sizeof buf, 0)) > 0) got.emplace_back(buf, buf + n);
    return got;
  }

  int fds_[2] = {-1, -1};
  size_t fill_ = 0;
  size_t fillerLeft_ = 0;  // filler datagrams not read yet
  event::Loop loop_;
  NullOwner owner_;
  std::unique_ptr<netstack::NetStack> stack_;
  std::unique_ptr<TunPump> pump_;
};

TEST(TunPumpClassify, ControlIsSynFinRstWithoutPayload) {
  auto is = [](const std::vector<uint8_t>& p) {
    iovec iov{const_cast<uint8_t*>(p.data()), p.size()};
    return TunPump::isControlPacket(netstack::PacketView{&iov, 1, p.size()});
  };
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    EXPECT_TRUE(is(segment(v6, kRst, 1)));
    EXPECT_TRUE(is(segment(v6, kRst | kAck, 1)));
    EXPECT_TRUE(is(segment(v6, kFin | kAck, 1)));
    EXPECT_TRUE(is(segment(v6, kSyn | kAck, 1, 0, 1460)));  // with an option
    EXPECT_FALSE(is(segment(v6, kAck, 1)));                 // pure ACK: recoverable
    EXPECT_FALSE(is(segment(v6, kAck | kPsh, 1, 100)));     // data
    EXPECT_FALSE(is(segment(v6, kFin | kAck, 1, 1)));       // FIN riding on data
    EXPECT_FALSE(is(segment(v6, kRst, 1, 1)));              // RST with payload
  }
  EXPECT_FALSE(is(test::buildUdp("198.18.1.2", "198.18.2.1", 53, 40000, {})));
  EXPECT_FALSE(is(test::buildUdp("2001:db8:1::2", "2001:db8:2::1", 53, 40000, {})));
  // Cut short: the IP header claims more than there is.
  std::vector<uint8_t> rst = segment(false, kRst, 1);
  rst.resize(rst.size() - 1);
  EXPECT_FALSE(is(rst));
  // An IPv4 fragment is never a control packet.
  std::vector<uint8_t> frag = segment(false, kRst, 1);
  frag[6] |= 0x20;  // MF
  EXPECT_FALSE(is(frag));
  // Headers split across iovecs at every byte (a pbuf chain may split them).
  std::vector<uint8_t> synack = segment(true, kSyn | kAck, 1, 0, 1440);
  std::vector<iovec> iov;
  for (uint8_t& b : synack) iov.push_back(iovec{&b, 1});
  EXPECT_TRUE(TunPump::isControlPacket(
      netstack::PacketView{iov.data(), static_cast<int>(iov.size()), synack.size()}));
}

// Data fills its budget and the rest of it is dropped; thousands of control
// packets interleaved with it all wait, and everything kept arrives in the
// order it was written.
TEST_F(TunPumpControlTest, ControlBurstBeyondTheDataBudgetArrivesInOrder) {
  constexpr uint32_t kControl = 4000;
  std::vector<std::vector<uint8_t>> kept;  // what must arrive, in order
  size_t dataBytes = 0, dataPackets = 0, dataDropped = 0;
  auto data = [&](const std::vector<uint8_t>& p) {
    pumpWrite(*pump_, p);
    if (dataBytes + p.size() <= TunPump::kMaxBacklogBytes &&
        dataPackets < TunPump::kMaxBacklogPackets) {
      dataBytes += p.size();
      ++dataPackets;
      kept.push_back(p);
    } else {
      ++dataDropped;
    }
  };
  // 300 x ~1 KiB: past the 256 KiB data budget.
  for (uint32_t i = 0; i < 300; ++i) data(segment(i % 2 == 1, kAck | kPsh, 1000000 + i, 1000));
  ASSERT_GT(dataDropped, 0u);
  for (uint32_t i = 0; i < kControl; ++i) {
    std::vector<uint8_t> p;
    switch (i % 4) {
      case 0: p = segment(false, kRst | kAck, i); break;
      case 1: p = segment(true, kRst, i); break;
      case 2: p = segment(false, kFin | kAck, i); break;
      default: p = segment(true, kSyn | kAck, i, 0, 1440); break;
    }
    pumpWrite(*pump_, p);
    kept.push_back(p);
    // Data between them is still bounded: dropped, pure ACKs included.
    if (i % 10 == 0) data(segment(false, kAck, 2000000 + i));
    if (i % 10 == 5) data(segment(true, kFin | kAck | kPsh, 3000000 + i, 500));
  }
  const TunPumpStats& st = pump_->stats();
  EXPECT_EQ(st.controlQueued, kControl);
  EXPECT_EQ(st.controlDropped, 0u);
  EXPECT_EQ(st.writeDropped, dataDropped);
  EXPECT_EQ(st.writeQueued, kControl + dataPackets);
  EXPECT_LE(dataBytes, TunPump::kMaxBacklogBytes);

  std::vector<std::vector<uint8_t>> got = drain(kept.size());
  ASSERT_EQ(got.size(), kept.size());
  uint32_t nextControl = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i], kept[i]) << "packet " << i << " out of order or changed";
    test::ParsedPacket p;
    ASSERT_TRUE(test::parsePacket(got[i], p));
    if (p.payload.empty() && (p.flags & (kSyn | kFin | kRst)) != 0) {
      EXPECT_EQ(p.seq, nextControl);
      ++nextControl;
    }
  }
  EXPECT_EQ(nextControl, kControl);
  EXPECT_EQ(st.packetsOut, kept.size());
  EXPECT_EQ(st.writeDropped, dataDropped);  // nothing lost while flushing

  // Flushed: the budgets are free again.
  pumpWrite(*pump_, segment(false, kAck | kPsh, 5, 1000));
  pumpWrite(*pump_, segment(false, kRst, 6));
  EXPECT_EQ(drain(2).size(), 2u);
  EXPECT_EQ(st.writeDropped, dataDropped);
}

// Beyond its own room a control packet is dropped and counted apart; the
// ones that fitted still arrive in order.
TEST_F(TunPumpControlTest, ControlRoomOverflowIsCounted) {
  const uint32_t total = static_cast<uint32_t>(TunPump::kMaxControlPackets) + 100;
  for (uint32_t i = 0; i < total; ++i) pumpWrite(*pump_, segment(i % 2 == 1, kRst | kAck, i));
  const TunPumpStats& st = pump_->stats();
  EXPECT_EQ(st.controlQueued, TunPump::kMaxControlPackets);
  EXPECT_EQ(st.controlDropped, 100u);
  EXPECT_EQ(st.writeDropped, 100u);
  // Data still has its own budget while the control room is full.
  pumpWrite(*pump_, segment(false, kAck | kPsh, 999999, 1000));
  EXPECT_EQ(st.writeDropped, 100u);

  std::vector<std::vector<uint8_t>> got = drain(TunPump::kMaxControlPackets + 1);
  ASSERT_EQ(got.size(), TunPump::kMaxControlPackets + 1);
  for (uint32_t i = 0; i < TunPump::kMaxControlPackets; ++i) {
    test::ParsedPacket p;
    ASSERT_TRUE(test::parsePacket(got[i], p));
    ASSERT_EQ(p.seq, i);
    ASSERT_EQ(p.flags, kRst | kAck);
  }
  test::ParsedPacket last;
  ASSERT_TRUE(test::parsePacket(got.back(), last));
  EXPECT_EQ(last.seq, 999999u);
  EXPECT_EQ(last.payload.size(), 1000u);
}

}  // namespace
}  // namespace vt::client
