// NetStack + TcpFlow against a fake TUN owner: packets in from a builder,
// packets out captured and parsed (checksums verified).
#include "netstack/net_stack.h"

#include <deque>
#include <gtest/gtest.h>

#include <algorithm>

#include <random>

#include "netstack/tcp_flow.h"
#include "packet_builder.h"

namespace vt::netstack {
namespace {

using test::buildTcp;
using test::kAck;
using test::kFin;
using test::kPsh;
using test::kRst;
using test::kSyn;
using test::ParsedPacket;
using test::parsePacket;
using test::TcpSegment;

constexpr const char* kTun4 = "198.18.0.1";
constexpr const char* kApp4 = "198.18.0.2";
constexpr const char* kTun6 = "2001:db8::1";
constexpr const char* kApp6 = "2001:db8::2";

IpAddress ip(const char* text) {
  IpAddress a;
  EXPECT_TRUE(IpAddress::parse(text, a)) << text;
  return a;
}

FlowKey keyOf(const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  return FlowKey{ip(src), sport, ip(dst), dport};
}

struct FlowRecorder final : TcpFlow::Callbacks {
  void onData(BufferChain& data, bool endStream) override {
    received.moveFrom(data);
    if (endStream) fin = true;
    ++dataCalls;
  }
  void onWritable() override { ++writable; }
  void onClosed(TcpFlow::CloseReason reason) override {
    closed = true;
    closeReason = reason;
  }
  BufferChain received;
  bool fin = false;
  int dataCalls = 0;
  int writable = 0;
  bool closed = false;
  TcpFlow::CloseReason closeReason = TcpFlow::CloseReason::kAborted;
};

class FakeOwner : public NetStack::Callbacks {
 public:
  void onOutput(const PacketView& packet) override {
    std::vector<uint8_t> bytes;
    for (int i = 0; i < packet.iovCount; ++i) {
      const auto* b = static_cast<const uint8_t*>(packet.iov[i].iov_base);
      bytes.insert(bytes.end(), b, b + packet.iov[i].iov_len);
    }
    EXPECT_EQ(bytes.size(), packet.size);
    out.push_back(std::move(bytes));
  }
  void onTcpSyn(const FlowKey& key) override {
    syns.push_back(key);
    if (acceptAtOnce) {
      EXPECT_TRUE(stack->acceptPending(key));
    }
  }
  void onTcpAccepted(std::unique_ptr<TcpFlow> flow) override {
    if (dropAccepted) return;  // destroyed inside the callback
    if (setCallbacksAtOnce) flow->setCallbacks(&recorders.emplace_back());
    flows.push_back(std::move(flow));
  }
  void onTimerInterval(uint32_t ms) override {
    if ((ms != 0) != timerOn) timerCalls.push_back(ms != 0);
    timerOn = ms != 0;
    intervalMs = ms;
  }
  bool onOtherPacket(const uint8_t* packet, size_t len) override {
    if (!takeOther) return false;
    other.emplace_back(packet, packet + len);
    return true;
  }

  ParsedPacket lastOut() {
    ParsedPacket p;
    EXPECT_FALSE(out.empty());
    if (!out.empty()) {
      EXPECT_TRUE(parsePacket(out.back(), p));
      EXPECT_TRUE(p.checksumsOk);
    }
    return p;
  }

  NetStack* stack = nullptr;
  bool acceptAtOnce = false;
  bool dropAccepted = false;
  bool setCallbacksAtOnce = true;
  bool takeOther = false;
  bool timerOn = false;
  std::vector<bool> timerCalls;  // on/off changes only
  uint32_t intervalMs = 0;
  std::vector<std::vector<uint8_t>> out;
  std::vector<FlowKey> syns;
  std::vector<std::unique_ptr<TcpFlow>> flows;
  std::deque<FlowRecorder> recorders;
  std::vector<std::vector<uint8_t>> other;
};

class NetStackTest : public ::testing::Test {
 protected:
  void SetUp() override { makeStack(NetStackOptions{}); }
  void TearDown() override {
    owner_.flows.clear();
    stack_.reset();
  }
  void makeStack(NetStackOptions opt) {
    owner_.flows.clear();
    stack_.reset();
    opt.ipv4 = ip(kTun4);
    opt.ipv6 = ip(kTun6);
    auto r = NetStack::create(opt, owner_);
    ASSERT_TRUE(r.ok()) << r.error().toString();
    stack_ = std::move(r).value();
    owner_.stack = stack_.get();
  }
  void send(const std::vector<uint8_t>& pkt) { stack_->input(pkt.data(), pkt.size()); }
  void send(const TcpSegment& s) { send(buildTcp(s)); }
  bool offerSack_ = false;  // connect() offers SACK_PERM, as Linux does
  int offerWscale_ = -1;    // >=0: connect() offers window scaling, as Linux does
  uint32_t highestEnd_ = 0;  // of the data segments takeSegments() saw

  // The data segments in owner_.out (cleared), in order.
  std::vector<ParsedPacket> takeSegments() {
    std::vector<ParsedPacket> segs;
    for (auto& pkt : owner_.out) {
      ParsedPacket p;
      EXPECT_TRUE(parsePacket(pkt, p));
      if (p.payload.empty()) continue;
      const uint32_t end = p.seq + static_cast<uint32_t>(p.payload.size());
      if (end - highestEnd_ < (1u << 31)) highestEnd_ = end;
      segs.push_back(std::move(p));
    }
    owner_.out.clear();
    return segs;
  }

  // Runs the stack's timer as the owner's loop would for `ms` of time (at
  // the interval the stack asked for; stops when it asks for none).
  void advanceMs(uint64_t ms) {
    for (uint64_t t = 0; t < ms && owner_.timerOn;) {
      t += owner_.intervalMs;
      stack_->onTimer();
    }
  }

  // Client side of one connection, with the sequence numbers tracked.
  struct Conn {
    TcpSegment base;   // addresses and ports
    uint32_t seq = 0;  // next seq from the app
    uint32_t ack = 0;  // next seq expected from lwIP
    TcpFlow* flow = nullptr;
    FlowRecorder* rec = nullptr;
  };

  TcpSegment seg(const Conn& c, uint8_t flags, std::vector<uint8_t> payload = {}) {
    TcpSegment s = c.base;
    s.seq = c.seq;
    s.ack = c.ack;
    s.flags = flags;
    s.payload = std::move(payload);
    return s;
  }

  Conn connect(const char* src, uint16_t sport, const char* dst, uint16_t dport,
               bool expectFlow = true) {
    Conn c;
    c.base.src = src;
    c.base.dst = dst;
    c.base.srcPort = sport;
    c.base.dstPort = dport;
    c.seq = 1000;
    owner_.acceptAtOnce = true;
    TcpSegment syn = seg(c, kSyn);
    syn.mss = 1460;
    syn.sackPermitted = offerSack_;
    syn.wscale = offerWscale_;
    size_t before = owner_.out.size();
    send(syn);
    owner_.acceptAtOnce = false;
    EXPECT_EQ(owner_.out.size(), before + 1);
    ParsedPacket sa = owner_.lastOut();
    EXPECT_EQ(sa.flags, kSyn | kAck);
    EXPECT_EQ(sa.ack, 1001u);
    c.seq = 1001;
    c.ack = sa.seq + 1;
    size_t flowsBefore = owner_.flows.size();
    send(seg(c, kAck));
    EXPECT_EQ(owner_.flows.size(), flowsBefore + (expectFlow ? 1 : 0));
    if (expectFlow && owner_.flows.size() == flowsBefore + 1) {
      c.flow = owner_.flows.back().get();
      c.rec = owner_.setCallbacksAtOnce ? &owner_.recorders.back() : nullptr;
      EXPECT_EQ(c.flow->key(), keyOf(src, sport, dst, dport));
    }
    return c;
  }

  FakeOwner owner_;
  std::unique_ptr<NetStack> stack_;
};

TEST_F(NetStackTest, SynIsHeldUntilAcceptThenSynAckFromAnyAddressAndPort) {
  struct Case {
    const char* app;
    const char* dst;
    uint16_t port;
    uint16_t mss;
  } cases[] = {{kApp4, "198.19.7.9", 443, 1460},
               {kApp4, "198.18.200.1", 80, 1460},
               {kApp4, "198.19.255.254", 65535, 1460},
               {kApp6, "2001:db8:1::5", 443, 1440},
               {kApp6, "2001:db8:ffff::1", 22, 1440}};
  uint16_t sport = 40000;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.dst) + ":" + std::to_string(c.port));
    owner_.out.clear();
    owner_.syns.clear();
    TcpSegment syn{c.app, c.dst, ++sport, c.port, 777, 0, kSyn, 65535, 1460, {}};
    send(syn);
    EXPECT_TRUE(owner_.out.empty()) << "no SYN-ACK before the owner decides";
    ASSERT_EQ(owner_.syns.size(), 1u);
    EXPECT_EQ(owner_.syns[0], keyOf(c.app, sport, c.dst, c.port));
    EXPECT_EQ(stack_->pendingCount(), 1u);
    ASSERT_TRUE(stack_->acceptPending(owner_.syns[0]));
    EXPECT_FALSE(stack_->acceptPending(owner_.syns[0])) << "answered once";
    ASSERT_EQ(owner_.out.size(), 1u);
    ParsedPacket sa = owner_.lastOut();
    EXPECT_EQ(sa.flags, kSyn | kAck);
    EXPECT_EQ(sa.src, c.dst);
    EXPECT_EQ(sa.dst, c.app);
    EXPECT_EQ(sa.srcPort, c.port);
    EXPECT_EQ(sa.dstPort, sport);
    EXPECT_EQ(sa.ack, 778u);
    EXPECT_EQ(sa.mss, c.mss) << "MSS from the MTU";
  }
}

TEST_F(NetStackTest, RejectSendsValidRst) {
  for (const char* app : {kApp4, kApp6}) {
    const bool v6 = std::string(app) == kApp6;
    const char* dst = v6 ? "2001:db8:2::9" : "198.19.1.1";
    owner_.out.clear();
    owner_.syns.clear();
    send(TcpSegment{app, dst, 5555, 8443, 0xfffffff0u, 0, kSyn, 65535, 0, {}});
    ASSERT_EQ(owner_.syns.size(), 1u);
    ASSERT_TRUE(stack_->rejectPending(owner_.syns[0]));
    ASSERT_EQ(owner_.out.size(), 1u);
    ParsedPacket rst = owner_.lastOut();
    EXPECT_EQ(rst.version, v6 ? 6 : 4);
    EXPECT_EQ(rst.flags, kRst | kAck);
    EXPECT_EQ(rst.seq, 0u);
    EXPECT_EQ(rst.ack, 0xfffffff1u);
    EXPECT_EQ(rst.src, dst);
    EXPECT_EQ(rst.dst, app);
    EXPECT_EQ(rst.srcPort, 8443);
    EXPECT_EQ(rst.dstPort, 5555);
    EXPECT_EQ(stack_->pendingCount(), 0u);
    EXPECT_FALSE(stack_->rejectPending(owner_.syns[0]));
  }
  EXPECT_EQ(stack_->stats().rstSent, 2u);
}

TEST_F(NetStackTest, RejectFromInsideOnTcpSynIsDeferredAndWorks) {
  struct Rejecter : FakeOwner {
    void onTcpSyn(const FlowKey& key) override {
      syns.push_back(key);
      EXPECT_TRUE(stack->rejectPending(key));
      EXPECT_TRUE(out.empty()) << "deferred until input() returns";
    }
  } owner;
  owner_.flows.clear();
  stack_.reset();
  NetStackOptions opt;
  auto r = NetStack::create(opt, owner);
  ASSERT_TRUE(r.ok());
  owner.stack = r.value().get();
  auto pkt = buildTcp(TcpSegment{kApp4, "198.19.0.3", 1234, 25, 5, 0, kSyn, 65535, 0, {}});
  r.value()->input(pkt.data(), pkt.size());
  ASSERT_EQ(owner.out.size(), 1u);
  EXPECT_EQ(owner.lastOut().flags, kRst | kAck);
}

TEST_F(NetStackTest, RetransmittedSynWhilePendingIsDropped) {
  TcpSegment syn{kApp4, "198.19.0.1", 1111, 443, 50, 0, kSyn, 65535, 0, {}};
  send(syn);
  send(syn);
  send(syn);
  EXPECT_EQ(owner_.syns.size(), 1u);
  EXPECT_EQ(stack_->stats().synRetransmitDropped, 2u);
  ASSERT_TRUE(stack_->acceptPending(owner_.syns[0]));
  EXPECT_EQ(owner_.out.size(), 1u);
  // In SYN_RCVD a retransmitted SYN goes to lwIP, which repeats its SYN-ACK.
  send(syn);
  EXPECT_EQ(owner_.syns.size(), 1u);
  EXPECT_EQ(owner_.out.size(), 2u);
  EXPECT_EQ(owner_.lastOut().flags, kSyn | kAck);
}

TEST_F(NetStackTest, PendingCapEvictsOldest) {
  NetStackOptions opt;
  opt.maxPendingSyns = 2;
  makeStack(opt);
  for (uint16_t port = 1; port <= 3; ++port) {
    send(TcpSegment{kApp4, "198.19.0.1", port, 80, 1, 0, kSyn, 65535, 0, {}});
  }
  ASSERT_EQ(owner_.syns.size(), 3u);
  EXPECT_EQ(stack_->pendingCount(), 2u);
  EXPECT_EQ(stack_->stats().synEvicted, 1u);
  EXPECT_FALSE(stack_->acceptPending(owner_.syns[0]));
  EXPECT_TRUE(stack_->acceptPending(owner_.syns[1]));
  EXPECT_TRUE(stack_->acceptPending(owner_.syns[2]));
}

TEST_F(NetStackTest, AppRstWhilePendingForgetsTheSyn) {
  send(TcpSegment{kApp4, "198.19.0.1", 9, 80, 1, 0, kSyn, 65535, 0, {}});
  send(TcpSegment{kApp4, "198.19.0.1", 9, 80, 2, 0, kRst, 0, 0, {}});
  EXPECT_EQ(stack_->pendingCount(), 0u);
  EXPECT_EQ(stack_->stats().synAborted, 1u);
  EXPECT_FALSE(stack_->acceptPending(owner_.syns[0]));
}

TEST_F(NetStackTest, HandshakeAndDataFromAppV4AndV6) {
  for (const char* app : {kApp4, kApp6}) {
    const bool v6 = std::string(app) == kApp6;
    Conn c = connect(app, 40001, v6 ? "2001:db8:5::5" : "198.19.5.5", 443);
    ASSERT_NE(c.flow, nullptr);
    EXPECT_TRUE(c.flow->isOpen());
    send(seg(c, kAck | kPsh, {'h', 'e', 'l', 'l', 'o'}));
    c.seq += 5;
    send(seg(c, kAck | kPsh, {' ', 'w'}));
    c.seq += 2;
    EXPECT_EQ(c.rec->received.toString(), "hello w");
    EXPECT_EQ(c.flow->bytesIn(), 7u);
    EXPECT_EQ(c.flow->unconsumed(), 7u);
    c.flow->consumed(100);  // clamps to what was delivered
    EXPECT_EQ(c.flow->unconsumed(), 0u);
  }
  EXPECT_EQ(stack_->flowCount(), 2u);
}

TEST_F(NetStackTest, OutOfOrderDataArrivesAsAdoptedPbufChain) {
  Conn c = connect(kApp4, 40030, "198.19.0.30", 80);
  ASSERT_NE(c.flow, nullptr);
  Conn later = c;
  later.seq += 4;
  send(seg(later, kAck | kPsh, {'5', '6', '7', '8'}));  // queued out of order
  EXPECT_EQ(c.rec->received.size(), 0u);
  send(seg(c, kAck | kPsh, {'1', '2', '3', '4'}));
  EXPECT_EQ(c.rec->received.toString(), "12345678");
  EXPECT_GE(c.rec->received.sliceCount(), 2u) << "one Slice per pbuf";
  // The owner keeps the back slice longer than the front one.
  BufferChain front;
  front.moveFrom(c.rec->received, 4);
  front.clear();
  EXPECT_EQ(c.rec->received.toString(), "5678");
  c.rec->received.clear();
  c.flow->consumed(8);
}

TEST_F(NetStackTest, AbortOrCloseInsideOnData) {
  struct Closer final : TcpFlow::Callbacks {
    void onData(BufferChain& data, bool) override {
      data.clear();
      if (abort) {
        flow->abort();
      } else {
        flow->close();
      }
    }
    void onWritable() override {}
    void onClosed(TcpFlow::CloseReason) override { closed = true; }
    TcpFlow* flow = nullptr;
    bool abort = true;
    bool closed = false;
  };
  for (bool abort : {true, false}) {
    Conn c = connect(kApp4, abort ? 40031 : 40032, "198.19.0.31", 80);
    ASSERT_NE(c.flow, nullptr);
    Closer closer;
    closer.flow = c.flow;
    closer.abort = abort;
    c.flow->setCallbacks(&closer);
    owner_.out.clear();
    send(seg(c, kAck | kPsh, {'x'}));
    EXPECT_FALSE(c.flow->isOpen());
    ASSERT_FALSE(owner_.out.empty());
    // Unconsumed data: lwIP resets on close too (the app learns of the loss).
    bool rst = false;
    for (auto& pkt : owner_.out) {
      ParsedPacket p;
      ASSERT_TRUE(parsePacket(pkt, p));
      rst = rst || (p.flags & kRst) != 0;
    }
    EXPECT_TRUE(rst) << "abort=" << abort;
    send(seg(c, kAck | kPsh, {'y'}));
    EXPECT_FALSE(closer.closed);
  }
  EXPECT_FALSE(owner_.timerOn);
}

TEST_F(NetStackTest, SynToMulticastOrBroadcastIsDropped) {
  send(TcpSegment{kApp4, "224.0.0.5", 1, 80, 1, 0, kSyn, 65535, 0, {}});
  send(TcpSegment{kApp4, "255.255.255.255", 1, 80, 1, 0, kSyn, 65535, 0, {}});
  send(TcpSegment{kApp6, "ff02::1", 1, 80, 1, 0, kSyn, 65535, 0, {}});
  send(TcpSegment{"0.0.0.0", "198.19.0.1", 1, 80, 1, 0, kSyn, 65535, 0, {}});
  EXPECT_TRUE(owner_.syns.empty());
  EXPECT_EQ(stack_->stats().synNotUnicast, 4u);
}

TEST_F(NetStackTest, DataHeldUntilSetCallbacks) {
  owner_.setCallbacksAtOnce = false;
  Conn c = connect(kApp4, 40002, "198.19.0.9", 80);
  ASSERT_NE(c.flow, nullptr);
  send(seg(c, kAck | kPsh, {'a', 'b', 'c'}));
  c.seq += 3;
  send(seg(c, kAck | kFin));
  FlowRecorder rec;
  c.flow->setCallbacks(&rec);
  EXPECT_EQ(rec.received.toString(), "abc");
  EXPECT_TRUE(rec.fin);
  c.flow->setCallbacks(nullptr);
}

TEST_F(NetStackTest, BackpressureClosesAndReopensWindow) {
  Conn c = connect(kApp4, 40003, "198.19.0.10", 5001);
  ASSERT_NE(c.flow, nullptr);
  const std::vector<uint8_t> chunk(1460, 'x');
  const uint32_t start = c.seq;
  uint32_t lastWindow = 0xFFFFFFFF;
  for (int i = 0; i < 80; ++i) {
    owner_.out.clear();
    send(seg(c, kAck, chunk));
    stack_->onTimer();  // flushes a delayed ACK
    for (auto& pkt : owner_.out) {
      ParsedPacket p;
      ASSERT_TRUE(parsePacket(pkt, p));
      if (p.flags & kAck) {
        c.seq = p.ack;  // lwIP may take only part of a segment at the edge
        lastWindow = p.window;
      }
    }
    if (lastWindow == 0) break;
  }
  const size_t sent = c.seq - start;
  EXPECT_EQ(lastWindow, 0u) << "window must close without consumed()";
  EXPECT_GE(sent, 65535u);
  EXPECT_EQ(c.rec->received.size(), sent);
  EXPECT_EQ(c.flow->unconsumed(), sent);
  owner_.out.clear();
  c.rec->received.clear();  // the owner dropped the bytes it had
  c.flow->consumed(sent);
  ASSERT_FALSE(owner_.out.empty()) << "window update after consumed()";
  ParsedPacket upd = owner_.lastOut();
  EXPECT_GE(upd.window, 60000u);
}

// ack-batch.patch + TcpFlow::ackLater: full segments read in one batch are
// ACKed once when it ends (or once a quarter of the window is unacked);
// a segment with PSH at once; outside a batch each input() is its own.
TEST_F(NetStackTest, FullSegmentsAreAckedOncePerInputBatch) {
  Conn c = connect(kApp4, 40050, "198.19.0.90", 5001);
  ASSERT_NE(c.flow, nullptr);
  const std::vector<uint8_t> full(1460, 'u');
  auto acks = [&] {
    std::vector<uint32_t> out;
    for (auto& pkt : owner_.out) {
      ParsedPacket p;
      EXPECT_TRUE(parsePacket(pkt, p));
      if ((p.flags & kAck) && p.payload.empty()) out.push_back(p.ack);
    }
    return out;
  };
  owner_.out.clear();
  {
    NetStack::InputBatch batch(*stack_);
    for (int i = 0; i < 8; ++i) {
      send(seg(c, kAck, full));
      c.seq += 1460;
    }
    EXPECT_TRUE(owner_.out.empty()) << "no ACK inside the batch";
  }
  EXPECT_EQ(acks(), std::vector<uint32_t>{c.seq}) << "one ACK for all 8";

  // 20 segments: 12 x 1460 reach a quarter of the window (this SYN had no
  // window scaling: 65535 bytes, a quarter is 16383).
  owner_.out.clear();
  const uint32_t first = c.seq;
  {
    NetStack::InputBatch batch(*stack_);
    for (int i = 0; i < 20; ++i) {
      send(seg(c, kAck, full));
      c.seq += 1460;
    }
    EXPECT_EQ(acks(), std::vector<uint32_t>{first + 12 * 1460});
  }
  EXPECT_EQ(acks(), (std::vector<uint32_t>{first + 12 * 1460, c.seq}));

  owner_.out.clear();
  {
    NetStack::InputBatch batch(*stack_);
    send(seg(c, kAck | kPsh, full));
    c.seq += 1460;
    EXPECT_EQ(acks(), std::vector<uint32_t>{c.seq}) << "PSH: at once";
  }
  EXPECT_EQ(acks().size(), 1u) << "nothing more at the end";

  owner_.out.clear();
  send(seg(c, kAck, full));
  c.seq += 1460;
  EXPECT_EQ(acks(), std::vector<uint32_t>{c.seq}) << "no batch: ACKed when input() returns";

  // A flow destroyed while it owes a batched ACK leaves the queue.
  owner_.out.clear();
  {
    NetStack::InputBatch batch(*stack_);
    send(seg(c, kAck, full));
    owner_.flows.back().reset();  // aborts: the app gets a RST
  }
  ASSERT_FALSE(owner_.out.empty());
  EXPECT_TRUE(owner_.lastOut().flags & kRst) << "the RST is the last packet, no ACK after it";
}

TEST_F(NetStackTest, WriteToAppArrivesInOutputPackets) {
  for (const char* app : {kApp4, kApp6}) {
    const bool v6 = std::string(app) == kApp6;
    Conn c = connect(app, 40004, v6 ? "2001:db8::77" : "198.19.0.77", 8080);
    ASSERT_NE(c.flow, nullptr);
    // TCP_SND_BUF (lwipopts.h), all of it: not tcp_sndbuf()'s 0xFFFF clamp.
    const size_t space = c.flow->writeSpace();
    EXPECT_EQ(space, 256u * 1024);
    owner_.out.clear();
    BufferChain data;
    data.append(std::string(3000, 'y'));
    data.append(std::string("tail"));
    EXPECT_EQ(c.flow->write(data), 3004u);
    EXPECT_TRUE(data.empty());
    EXPECT_EQ(c.flow->writeSpace(), space - 3004);
    std::string got;
    for (int round = 0; round < 5 && got.size() < 3004; ++round) {
      for (auto& pkt : owner_.out) {
        ParsedPacket p;
        ASSERT_TRUE(parsePacket(pkt, p));
        EXPECT_TRUE(p.checksumsOk);
        EXPECT_EQ(p.src, v6 ? "2001:db8::77" : "198.19.0.77");
        EXPECT_EQ(p.seq, c.ack);
        EXPECT_LE(p.payload.size(), v6 ? 1440u : 1460u);
        got.append(p.payload.begin(), p.payload.end());
        c.ack += static_cast<uint32_t>(p.payload.size());
      }
      owner_.out.clear();
      send(seg(c, kAck));  // the app ACKs what it got
    }
    EXPECT_TRUE(got == std::string(3000, 'y') + "tail") << got.size();
    EXPECT_EQ(c.flow->writeSpace(), space);
  }
}

TEST_F(NetStackTest, WriteBeyondSendBufferIsPartialThenWritable) {
  Conn c = connect(kApp4, 40005, "198.19.0.78", 8080);
  ASSERT_NE(c.flow, nullptr);
  BufferChain data;
  const size_t total = 2 * c.flow->writeSpace();  // twice TCP_SND_BUF
  data.append(std::string(total, 'z'));
  size_t n = c.flow->write(data);
  EXPECT_GT(n, 0u);
  EXPECT_LT(n, total);
  EXPECT_EQ(data.size(), total - n);
  EXPECT_EQ(c.rec->writable, 0);
  // The app ACKs what arrived so far: space frees, onWritable fires.
  uint32_t top = c.ack;
  for (auto& pkt : owner_.out) {
    ParsedPacket p;
    ASSERT_TRUE(parsePacket(pkt, p));
    if (!p.payload.empty()) top = std::max(top, p.seq + static_cast<uint32_t>(p.payload.size()));
  }
  c.ack = top;
  send(seg(c, kAck));
  EXPECT_EQ(c.rec->writable, 1);
  EXPECT_GT(c.flow->writeSpace(), 0u);
}

TEST_F(NetStackTest, FinFromAppThenShutdownWrite) {
  Conn c = connect(kApp4, 40006, "198.19.0.80", 80);
  ASSERT_NE(c.flow, nullptr);
  send(seg(c, kAck | kFin));
  c.seq += 1;
  EXPECT_TRUE(c.rec->fin);
  EXPECT_TRUE(c.flow->remoteFinished());
  EXPECT_TRUE(c.flow->isOpen()) << "half-closed: we may still send";
  BufferChain data;
  data.append(std::string("bye"));
  EXPECT_EQ(c.flow->write(data), 3u);
  owner_.out.clear();
  c.flow->shutdownWrite();
  ASSERT_FALSE(owner_.out.empty());
  EXPECT_TRUE(owner_.lastOut().flags & kFin);
  EXPECT_FALSE(c.flow->isOpen()) << "both FINs: lwIP finishes alone";
  c.ack = owner_.lastOut().seq + 1;
  send(seg(c, kAck));
  EXPECT_FALSE(c.rec->closed);
}

TEST_F(NetStackTest, ShutdownWriteThenFinFromApp) {
  Conn c = connect(kApp6, 40007, "2001:db8::80", 80);
  ASSERT_NE(c.flow, nullptr);
  owner_.out.clear();
  c.flow->shutdownWrite();
  ParsedPacket fin = owner_.lastOut();
  EXPECT_TRUE(fin.flags & kFin);
  c.ack = fin.seq + 1;
  // The app can still send after our FIN (half-close).
  send(seg(c, kAck | kPsh, {'1', '2'}));
  c.seq += 2;
  EXPECT_EQ(c.rec->received.toString(), "12");
  c.flow->consumed(2);
  owner_.out.clear();
  send(seg(c, kAck | kFin));
  EXPECT_TRUE(c.rec->fin);
  EXPECT_FALSE(c.flow->isOpen());
  stack_->onTimer();
  ASSERT_FALSE(owner_.out.empty());
  EXPECT_EQ(owner_.lastOut().ack, c.seq + 1) << "FIN acknowledged";
  EXPECT_FALSE(c.rec->closed);
}

// Closes c the way a server-first close does: our FIN, the app's ACK and
// FIN; lwIP is left in TIME_WAIT for the 4-tuple.
#define VT_CLOSE_TO_TIME_WAIT(c)                 \
  do {                                           \
    owner_.out.clear();                          \
    (c).flow->shutdownWrite();                   \
    (c).ack = owner_.lastOut().seq + 1;          \
    send(seg((c), kAck | kFin));                 \
    (c).seq += 1;                                \
  } while (0)

TEST_F(NetStackTest, NewSynOnTimeWaitTupleStartsNewConnection) {
  Conn c = connect(kApp4, 40100, "198.19.0.9", 80);
  ASSERT_NE(c.flow, nullptr);
  VT_CLOSE_TO_TIME_WAIT(c);
  stack_->onTimer();
  EXPECT_EQ(stack_->timeWaitCount(), 1u);
  owner_.flows.clear();
  // The app's kernel reuses the port at once (it keeps no TIME_WAIT: it
  // closed second). Without the reap lwIP would answer with an ACK for the
  // old connection and ignore the app's RST (RFC 1337) for 2*MSL.
  size_t syns = owner_.syns.size();
  owner_.out.clear();
  owner_.acceptAtOnce = true;
  TcpSegment syn{kApp4, "198.19.0.9", 40100, 80, 777000, 0, kSyn, 65535, 1460, {}};
  send(syn);
  owner_.acceptAtOnce = false;
  EXPECT_EQ(owner_.syns.size(), syns + 1) << "held and offered like any new SYN";
  EXPECT_EQ(stack_->stats().timeWaitReused, 1u);
  ASSERT_EQ(owner_.out.size(), 1u);
  EXPECT_EQ(owner_.lastOut().flags, kSyn | kAck);
  EXPECT_EQ(owner_.lastOut().ack, 777001u);
  stack_->onTimer();
  EXPECT_EQ(stack_->timeWaitCount(), 0u);
}

TEST_F(NetStackTest, NewSynOnLastAckTupleStartsNewConnection) {
  // The app closes first and we answer with our FIN: LAST_ACK until the
  // app's ACK, which here is lost; the app's new SYN must not wait for it.
  Conn c = connect(kApp6, 40101, "2001:db8::9", 80);
  ASSERT_NE(c.flow, nullptr);
  send(seg(c, kAck | kFin));
  c.seq += 1;
  c.flow->shutdownWrite();
  owner_.flows.clear();
  owner_.acceptAtOnce = true;
  owner_.out.clear();
  TcpSegment syn{kApp6, "2001:db8::9", 40101, 80, 5000, 0, kSyn, 65535, 1440, {}};
  send(syn);
  owner_.acceptAtOnce = false;
  EXPECT_EQ(stack_->stats().closingReused, 1u);
  ASSERT_FALSE(owner_.out.empty());
  EXPECT_EQ(owner_.lastOut().flags, kSyn | kAck);
  EXPECT_EQ(owner_.lastOut().ack, 5001u);
}

TEST_F(NetStackTest, NewIsnOnPendingTupleReplacesTheHeldSyn) {
  TcpSegment first{kApp4, "198.19.0.1", 1112, 443, 50, 0, kSyn, 65535, 0, {}};
  send(first);
  TcpSegment second = first;
  second.seq = 900000;  // the app gave up and its kernel reused the port
  send(second);
  EXPECT_EQ(owner_.syns.size(), 1u) << "one decision for the 4-tuple";
  EXPECT_EQ(stack_->stats().synReplaced, 1u);
  ASSERT_TRUE(stack_->acceptPending(owner_.syns[0]));
  EXPECT_EQ(owner_.lastOut().flags, kSyn | kAck);
  EXPECT_EQ(owner_.lastOut().ack, 900001u) << "answers the SYN the app waits on";
}

TEST_F(NetStackTest, TimeWaitIsCappedOldestFirst) {
  NetStackOptions opt;
  opt.maxTimeWait = 2;
  makeStack(opt);
  std::vector<Conn> conns;
  for (uint16_t i = 0; i < 5; ++i) {
    Conn c = connect(kApp4, static_cast<uint16_t>(41000 + i), "198.19.0.9", 80);
    ASSERT_NE(c.flow, nullptr);
    VT_CLOSE_TO_TIME_WAIT(c);
    conns.push_back(c);
  }
  owner_.flows.clear();
  stack_->onTimer();
  EXPECT_EQ(stack_->timeWaitCount(), 2u);
  EXPECT_EQ(stack_->stats().timeWaitEvicted, 3u);
  // The newest two are kept: a FIN retransmitted on them is still ACKed,
  // one on an evicted (older) connection gets a RST from lwIP.
  owner_.out.clear();
  TcpSegment again = seg(conns[4], kAck | kFin);
  again.seq -= 1;
  send(again);
  ASSERT_EQ(owner_.out.size(), 1u);
  EXPECT_EQ(owner_.lastOut().flags & kRst, 0);
  owner_.out.clear();
  TcpSegment old = seg(conns[0], kAck | kFin);
  old.seq -= 1;
  send(old);
  ASSERT_EQ(owner_.out.size(), 1u);
  EXPECT_NE(owner_.lastOut().flags & kRst, 0);
}

#undef VT_CLOSE_TO_TIME_WAIT

// A short segment from the app is ACKed at once, not at the next timer tick
// (an app with Nagle on waits for that ACK before its next small write).
TEST_F(NetStackTest, ShortSegmentFromAppIsAckedAtOnce) {
  Conn c = connect(kApp4, 40200, "198.19.0.9", 80);
  ASSERT_NE(c.flow, nullptr);
  owner_.out.clear();
  send(seg(c, kAck | kPsh, {'G', 'E', 'T'}));
  c.seq += 3;
  ASSERT_EQ(owner_.out.size(), 1u) << "no timer ran";
  EXPECT_EQ(owner_.lastOut().ack, c.seq);
}

// Segments find their connection through the pcb index (pcb-index.patch;
// Debug and sanitizer builds check every lookup against lwIP's list walk):
// many connections, data in an order that defeats lwIP's move-to-front.
TEST_F(NetStackTest, ManyConnectionsDemuxThroughTheIndex) {
  std::vector<Conn> conns;
  for (uint16_t i = 0; i < 600; ++i) {
    const bool v6 = i % 2 == 1;
    conns.push_back(connect(v6 ? kApp6 : kApp4, static_cast<uint16_t>(20000 + i),
                            v6 ? "2001:db8::7" : "198.19.0.7", static_cast<uint16_t>(80 + i % 3)));
    ASSERT_NE(conns.back().flow, nullptr);
  }
  for (size_t round = 0; round < 2; ++round) {
    for (size_t k = 0; k < conns.size(); ++k) {
      Conn& c = conns[(k * 7919 + round) % conns.size()];
      send(seg(c, kAck | kPsh, {'x'}));
      c.seq += 1;
    }
  }
  for (Conn& c : conns) EXPECT_EQ(c.rec->received.toString(), "xx");
}

TEST_F(NetStackTest, AppRstClosesFlow) {
  Conn c = connect(kApp4, 40008, "198.19.0.81", 80);
  ASSERT_NE(c.flow, nullptr);
  send(seg(c, kRst | kAck));
  EXPECT_TRUE(c.rec->closed);
  EXPECT_EQ(c.rec->closeReason, TcpFlow::CloseReason::kReset);
  EXPECT_FALSE(c.flow->isOpen());
  BufferChain data;
  data.append(std::string("x"));
  EXPECT_EQ(c.flow->write(data), 0u);
  EXPECT_EQ(c.flow->writeSpace(), 0u);
}

TEST_F(NetStackTest, AbortSendsRstAndCloseSendsFin) {
  Conn a = connect(kApp4, 40009, "198.19.0.82", 80);
  Conn b = connect(kApp4, 40010, "198.19.0.82", 80);
  ASSERT_NE(a.flow, nullptr);
  ASSERT_NE(b.flow, nullptr);
  owner_.out.clear();
  a.flow->abort();
  EXPECT_EQ(owner_.lastOut().flags & kRst, kRst);
  EXPECT_FALSE(a.flow->isOpen());
  owner_.out.clear();
  b.flow->close();
  EXPECT_TRUE(owner_.lastOut().flags & kFin);
  send(seg(b, kRst));  // no callbacks after close
  EXPECT_FALSE(b.rec->closed);
  EXPECT_FALSE(a.rec->closed);
}

// An abort with data in flight: besides lwIP's RST at SND.NXT, one at
// SND.UNA and at the end of each unacked segment, so that one of them is
// exactly the app's RCV.NXT (an app with a closed window takes no other).
TEST_F(NetStackTest, AbortWithDataInFlightResetsAtEverySegmentEnd) {
  Conn c = connect(kApp4, 40011, "198.19.0.83", 80);
  ASSERT_NE(c.flow, nullptr);
  owner_.out.clear();
  BufferChain data;
  data.append(std::string(4000, 'z'));  // three segments of at most 1460
  ASSERT_EQ(c.flow->write(data), 4000u);
  std::vector<uint32_t> ends;
  for (auto& pkt : owner_.out) {
    ParsedPacket p;
    ASSERT_TRUE(parsePacket(pkt, p));
    if (!p.payload.empty()) ends.push_back(p.seq + static_cast<uint32_t>(p.payload.size()));
  }
  ASSERT_GE(ends.size(), 3u);
  const uint32_t una = c.ack;  // the app has acked nothing of it
  owner_.out.clear();
  c.flow->abort();
  std::vector<uint32_t> rsts;
  for (auto& pkt : owner_.out) {
    ParsedPacket p;
    ASSERT_TRUE(parsePacket(pkt, p));
    EXPECT_TRUE(p.checksumsOk);
    if (p.flags & kRst) rsts.push_back(p.seq);
  }
  // SND.UNA, each segment end (the last one is SND.NXT: lwIP's own), once each.
  std::vector<uint32_t> want = {una};
  want.insert(want.end(), ends.begin(), ends.end());
  std::sort(rsts.begin(), rsts.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(rsts, want);

  // Nothing in flight: only lwIP's own RST.
  Conn d = connect(kApp4, 40012, "198.19.0.83", 80);
  ASSERT_NE(d.flow, nullptr);
  owner_.out.clear();
  d.flow->abort();
  ASSERT_EQ(owner_.out.size(), 1u);
  EXPECT_EQ(owner_.lastOut().flags & kRst, kRst);
}

TEST_F(NetStackTest, DroppingFlowInsideAcceptResetsApp) {
  owner_.dropAccepted = true;
  Conn c = connect(kApp4, 40011, "198.19.0.83", 80, false);
  EXPECT_EQ(c.flow, nullptr);
  EXPECT_EQ(owner_.lastOut().flags & kRst, kRst);
  EXPECT_EQ(stack_->flowCount(), 0u);
}

TEST_F(NetStackTest, FlowCapAnswersRst) {
  NetStackOptions opt;
  opt.maxFlows = 1;
  makeStack(opt);
  Conn c = connect(kApp4, 40012, "198.19.0.84", 80);
  ASSERT_NE(c.flow, nullptr);
  owner_.out.clear();
  send(TcpSegment{kApp4, "198.19.0.84", 40013, 80, 1, 0, kSyn, 65535, 0, {}});
  EXPECT_EQ(owner_.syns.size(), 1u) << "owner not asked";
  EXPECT_EQ(owner_.lastOut().flags, kRst | kAck);
  EXPECT_EQ(stack_->stats().synOverFlowCap, 1u);
}

TEST_F(NetStackTest, IcmpEchoToRemoteGetsNoReplyButOwnAddressDoes) {
  send(test::buildEcho(kApp4, "198.19.9.9", 1, 1));
  send(test::buildEcho(kApp6, "2001:db8:9::9", 1, 1));
  EXPECT_TRUE(owner_.out.empty());
  EXPECT_EQ(stack_->stats().otherDropped, 2u);
  send(test::buildEcho(kApp4, kTun4, 7, 3));
  ASSERT_EQ(owner_.out.size(), 1u);
  ParsedPacket r = owner_.lastOut();
  EXPECT_EQ(r.protocol, 1);
  EXPECT_EQ(r.icmpType, 0);
  EXPECT_EQ(r.dst, kApp4);
  owner_.takeOther = true;
  send(test::buildEcho(kApp4, "198.19.9.9", 1, 2));
  EXPECT_EQ(owner_.other.size(), 1u) << "the CmdIP hook gets it";
  EXPECT_EQ(owner_.out.size(), 1u);
}

TEST_F(NetStackTest, UdpAndFragmentsAreDroppedAndCounted) {
  send(test::buildUdp(kApp4, "198.19.0.53", 5353, 53, {1, 2, 3}));
  send(test::buildUdp(kApp6, "2001:db8::53", 5353, 53, {1, 2, 3}));
  auto frag = buildTcp(TcpSegment{kApp4, "198.19.0.1", 1, 2, 0, 0, kSyn, 65535, 0, {}});
  frag[6] = 0x20;  // MF
  send(frag);
  EXPECT_TRUE(owner_.out.empty());
  EXPECT_TRUE(owner_.syns.empty());
  EXPECT_EQ(stack_->stats().udpDropped, 2u);
  EXPECT_EQ(stack_->stats().fragments, 1u);
}

TEST_F(NetStackTest, MalformedPacketsAreDroppedWithoutCrash) {
  const std::vector<uint8_t> good =
      buildTcp(TcpSegment{kApp4, "198.19.0.1", 1, 2, 0, 0, kSyn, 65535, 0, {}});
  std::vector<std::vector<uint8_t>> bad;
  bad.push_back({});
  bad.push_back({0x45});
  bad.push_back(std::vector<uint8_t>(good.begin(), good.begin() + 30));  // truncated TCP
  auto v = good;
  v[0] = 0x44;  // IHL 16 bytes
  bad.push_back(v);
  v = good;
  v[0] = 0x4f;  // IHL 60 > packet
  bad.push_back(v);
  v = good;
  v[3] = static_cast<uint8_t>(v[3] + 1);  // total length past the end
  bad.push_back(v);
  v = good;
  v[32] = 0xf0;  // TCP data offset 60 > segment
  bad.push_back(v);
  v = good;
  v[0] = 0x55;  // version 5
  bad.push_back(v);
  v = std::vector<uint8_t>(39, 0x60);  // short IPv6
  bad.push_back(v);
  for (auto& b : bad) stack_->input(b.data(), b.size());
  EXPECT_EQ(stack_->stats().malformed, bad.size());
  EXPECT_TRUE(owner_.syns.empty());

  // Random bytes and random mutations of valid segments must not crash.
  std::mt19937 rng(12345);
  owner_.acceptAtOnce = true;
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint8_t> pkt;
    if (i % 2 == 0) {
      pkt.resize(rng() % 120);
      for (auto& b : pkt) b = static_cast<uint8_t>(rng());
      if (!pkt.empty()) pkt[0] = static_cast<uint8_t>((i % 4 == 0 ? 0x40 : 0x60) | (pkt[0] & 0x0f));
    } else {
      pkt = buildTcp(TcpSegment{i % 3 ? kApp4 : kApp6,
                                i % 3 ? "198.19.0.1" : "2001:db8::9",
                                static_cast<uint16_t>(rng()),
                                80,
                                static_cast<uint32_t>(rng()),
                                0,
                                static_cast<uint8_t>(rng()),
                                65535,
                                0,
                                {1, 2, 3}});
      for (int k = 0; k < 3; ++k) pkt[rng() % pkt.size()] = static_cast<uint8_t>(rng());
    }
    stack_->input(pkt.data(), pkt.size());
    if (i % 50 == 0) stack_->onTimer();
  }
  owner_.acceptAtOnce = false;
}

TEST_F(NetStackTest, TimerNeededFollowsPendingAndFlows) {
  EXPECT_FALSE(stack_->timerNeeded());
  send(TcpSegment{kApp4, "198.19.0.1", 7, 80, 1, 0, kSyn, 65535, 0, {}});
  EXPECT_TRUE(owner_.timerOn);
  ASSERT_TRUE(stack_->rejectPending(owner_.syns[0]));
  EXPECT_FALSE(owner_.timerOn);
  EXPECT_EQ(owner_.timerCalls, (std::vector<bool>{true, false}));

  Conn c = connect(kApp4, 40020, "198.19.0.85", 80);
  ASSERT_NE(c.flow, nullptr);
  EXPECT_TRUE(owner_.timerOn);
  c.flow->abort();
  EXPECT_FALSE(owner_.timerOn) << "no pcb left";

  // Graceful: both FINs, then TIME_WAIT (2 * TCP_MSL) runs out on the timer.
  Conn d = connect(kApp4, 40021, "198.19.0.86", 80);
  ASSERT_NE(d.flow, nullptr);
  d.flow->shutdownWrite();
  d.ack = owner_.lastOut().seq + 1;
  send(seg(d, kAck | kFin));
  EXPECT_TRUE(owner_.timerOn);
  for (int i = 0; i < 200 && owner_.timerOn; ++i) stack_->onTimer();
  EXPECT_FALSE(owner_.timerOn);
}

// Loss recovery toward the app (newreno.patch, docs/netstack.md "Loss"):
// no timer runs in this test, so every retransmission seen is driven by
// the app's ACKs alone.
TEST_F(NetStackTest, LossRecoveryRetransmitsHolesWithoutTheTimer) {
  offerSack_ = true;
  Conn c = connect(kApp4, 40200, "198.19.0.90", 80);
  ASSERT_NE(c.flow, nullptr);
  owner_.out.clear();
  const uint32_t dataStart = c.ack;
  const size_t space = c.flow->writeSpace();
  BufferChain data;
  data.append(std::string(60000, 'r'));
  ASSERT_EQ(c.flow->write(data), 60000u);
  // Open the congestion window: ACK every segment until 6 are in flight.
  std::vector<ParsedPacket> flight;
  for (int round = 0; round < 10; ++round) {
    flight = takeSegments();
    if (flight.size() >= 6) break;
    for (const auto& p : flight) {
      c.ack = p.seq + static_cast<uint32_t>(p.payload.size());
      send(seg(c, kAck));
    }
  }
  ASSERT_GE(flight.size(), 6u) << "cwnd did not open";
  auto endOf = [](const ParsedPacket& p) { return p.seq + static_cast<uint32_t>(p.payload.size()); };
  auto has = [](const std::vector<ParsedPacket>& segs, uint32_t seq) {
    for (const auto& p : segs) {
      if (p.seq == seq) return true;
    }
    return false;
  };

  // Segments 0 and 2 lost. The first duplicate ACK that SACKs segment 1
  // retransmits segment 0 at once (not after three; and although the
  // app's window moved, as Linux's does on nearly every ACK).
  c.ack = flight[0].seq;
  TcpSegment dup = seg(c, kAck);
  dup.window = 60000;
  dup.sack = {{flight[1].seq, endOf(flight[1])}};
  send(dup);
  EXPECT_TRUE(has(takeSegments(), flight[0].seq)) << "no fast retransmit on the first SACK duplicate ACK";

  // Segment 3 arrives too: still a duplicate ACK, 0 is not sent again.
  dup.window = 59000;
  dup.sack = {{flight[3].seq, endOf(flight[3])}, {flight[1].seq, endOf(flight[1])}};
  send(dup);
  EXPECT_FALSE(has(takeSegments(), flight[0].seq));

  // The retransmitted 0 arrives: the ACK covers 0-1 and stops at the hole
  // at 2 (partial ACK): segment 2 goes at once, recovery goes on.
  c.ack = flight[2].seq;
  TcpSegment partial = seg(c, kAck);
  partial.sack = {{flight[3].seq, endOf(flight[3])}};
  send(partial);
  std::vector<ParsedPacket> sent = takeSegments();
  EXPECT_TRUE(has(sent, flight[2].seq)) << "no retransmission on the partial ACK";

  // That retransmission is lost, and a segment sent after it arrives. On
  // this FIFO link that proves it lost: segment 2 goes again, no timer.
  const ParsedPacket* fresh = nullptr;
  for (int i = 0; i < 4 && fresh == nullptr; ++i) {
    for (const auto& p : sent) {
      if (p.seq - endOf(flight.back()) < (1u << 31)) {
        fresh = &p;
        break;
      }
    }
    if (fresh == nullptr) {
      send(partial);  // one more duplicate ACK: room for new data
      sent = takeSegments();
      EXPECT_FALSE(has(sent, flight[2].seq));
    }
  }
  ASSERT_NE(fresh, nullptr) << "no new data sent during recovery";
  partial.sack = {{flight[3].seq, endOf(flight.back())}, {fresh->seq, endOf(*fresh)}};
  send(partial);
  EXPECT_TRUE(has(takeSegments(), flight[2].seq)) << "lost retransmission not repaired";

  // Everything sent arrives; the rest of the data flows, nothing lost.
  c.ack = highestEnd_;
  send(seg(c, kAck));
  for (int round = 0; round < 40 && c.ack != dataStart + 60000; ++round) {
    for (const auto& p : takeSegments()) {
      if (p.seq == c.ack) c.ack = endOf(p);
    }
    send(seg(c, kAck));
  }
  EXPECT_EQ(c.ack, dataStart + 60000) << "not all data arrived";
  EXPECT_EQ(c.flow->writeSpace(), space);
}

TEST_F(NetStackTest, PendingSynExpires) {
  NetStackOptions opt;
  opt.pendingSynTimeoutMs = 1000;
  makeStack(opt);
  send(TcpSegment{kApp4, "198.19.0.1", 7, 80, 1, 0, kSyn, 65535, 0, {}});
  advanceMs(900);
  EXPECT_EQ(stack_->pendingCount(), 1u) << "not before 1 s";
  advanceMs(300);
  EXPECT_EQ(stack_->pendingCount(), 0u);
  EXPECT_EQ(stack_->stats().synExpired, 1u);
  EXPECT_FALSE(owner_.timerOn);
}

TEST_F(NetStackTest, ZeroCopyInputBuffer) {
  auto pkt = buildTcp(TcpSegment{kApp4, "198.19.0.1", 7, 80, 1, 0, kSyn, 65535, 0, {}});
  InputBuffer buf = stack_->allocInput(1500);
  ASSERT_TRUE(buf.valid());
  ASSERT_GE(buf.capacity(), 1500u);
  std::memcpy(buf.data(), pkt.data(), pkt.size());
  stack_->input(std::move(buf), pkt.size());
  EXPECT_EQ(owner_.syns.size(), 1u);
  InputBuffer unused = stack_->allocInput(100);  // freed unused
  EXPECT_FALSE(stack_->allocInput(70000).valid());
}

TEST_F(NetStackTest, FlowsOutliveTheStack) {
  Conn c = connect(kApp4, 40022, "198.19.0.87", 80);
  ASSERT_NE(c.flow, nullptr);
  std::unique_ptr<TcpFlow> flow = std::move(owner_.flows.back());
  owner_.flows.clear();
  stack_.reset();
  EXPECT_FALSE(flow->isOpen());
  BufferChain data;
  data.append(std::string("x"));
  EXPECT_EQ(flow->write(data), 0u);
  flow.reset();
  makeStack(NetStackOptions{});  // a fresh instance works after the old one
  Conn d = connect(kApp4, 40022, "198.19.0.87", 80);
  EXPECT_NE(d.flow, nullptr);
}

// Out-of-order segments from the app are SACKed, so lwIP must keep them
// (never renege): the app's kernel does not resend what it saw SACKed
// until its own retransmission timeout, which backs off exponentially.
// it_tun_loss (5% loss each way) stalled an upload for over 2 minutes when
// lwIP dropped the queue past 48 pbufs (lwipopts.h TCP_OOSEQ_MAX_PBUFS).
TEST_F(NetStackTest, OutOfOrderSegmentsAreKeptForAWholeWindow) {
  offerSack_ = true;
  offerWscale_ = 7;  // Linux's; lwIP's 256 KiB window needs scaling
  Conn c = connect(kApp4, 40300, "198.19.0.91", 9000);
  ASSERT_NE(c.flow, nullptr);
  ASSERT_NE(c.rec, nullptr);
  constexpr uint32_t kSeg = 1448;
  constexpr uint32_t kCount = 160;  // 226 KiB: inside the 256 KiB window
  const uint32_t start = c.seq;
  auto payload = [](uint32_t i) { return std::vector<uint8_t>(kSeg, static_cast<uint8_t>(i)); };
  // Segment 0 lost; 1..kCount arrive, each SACKed.
  for (uint32_t i = 1; i <= kCount; ++i) {
    c.seq = start + i * kSeg;
    send(seg(c, kAck, payload(i)));
  }
  EXPECT_EQ(c.rec->received.size(), 0u);
  ASSERT_FALSE(owner_.out.empty());
  EXPECT_EQ(owner_.lastOut().ack, start) << "a hole at segment 0";
  owner_.out.clear();
  // The app resends segment 0: everything it saw SACKed is delivered.
  c.seq = start;
  send(seg(c, kAck, payload(0)));
  EXPECT_EQ(c.rec->received.size(), size_t{kCount + 1} * kSeg) << "lwIP dropped SACKed data";
  ASSERT_FALSE(owner_.out.empty());
  EXPECT_EQ(owner_.lastOut().ack, start + (kCount + 1) * kSeg);
}

// The same when the app is silent for a while before it resends the hole
// (its retransmission timer in backoff): lwIP's out-of-order timeout
// (6 RTOs, 6 s for a pcb that only receives) dropped SACKed data.
TEST_F(NetStackTest, OutOfOrderSegmentsOutliveTheAppsBackoff) {
  offerSack_ = true;
  offerWscale_ = 7;
  Conn c = connect(kApp4, 40301, "198.19.0.91", 9000);
  ASSERT_NE(c.flow, nullptr);
  ASSERT_NE(c.rec, nullptr);
  constexpr uint32_t kSeg = 1448;
  const uint32_t start = c.seq;
  for (uint32_t i = 1; i <= 10; ++i) {
    c.seq = start + i * kSeg;
    send(seg(c, kAck, std::vector<uint8_t>(kSeg, 'o')));
  }
  ASSERT_TRUE(owner_.timerOn);
  advanceMs(30000);
  owner_.out.clear();
  c.seq = start;
  send(seg(c, kAck, std::vector<uint8_t>(kSeg, 'h')));
  EXPECT_EQ(c.rec->received.size(), size_t{11} * kSeg) << "lwIP dropped SACKed data while the app waited";
  ASSERT_FALSE(owner_.out.empty());
  EXPECT_EQ(owner_.lastOut().ack, start + 11 * kSeg);
}


}  // namespace
}  // namespace vt::netstack
