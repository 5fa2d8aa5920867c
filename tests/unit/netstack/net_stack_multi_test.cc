// Several NetStacks in one process (one per client core, each driven from
// its own thread): lwIP's globals are shared under one lock, and each
// stack must see only its own connections, callbacks and clock.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "netstack/net_stack.h"
#include "netstack/tcp_flow.h"
#include "packet_builder.h"

namespace vt::netstack {
namespace {

using test::buildTcp;
using test::kAck;
using test::kFin;
using test::kPsh;
using test::kSyn;
using test::ParsedPacket;
using test::parsePacket;
using test::TcpSegment;

// Both stacks have the same TUN addresses and see the same 4-tuples.
constexpr const char* kTun4 = "198.18.0.1";
constexpr const char* kApp4 = "198.18.0.2";
constexpr const char* kTun6 = "2001:db8::1";
constexpr const char* kDst = "198.19.0.7";
constexpr uint16_t kDstPort = 443;
constexpr uint16_t kFirstPort = 30000;

IpAddress ip(const char* text) {
  IpAddress a;
  EXPECT_TRUE(IpAddress::parse(text, a)) << text;
  return a;
}

std::string flatten(BufferChain& data) {
  std::string s = data.toString();
  data.clear();
  return s;
}

// One client core's view of its NetStack: the TUN owner plus the app side
// of its connections. Used from one thread only, which every callback
// checks.
class Core final : public NetStack::Callbacks {
 public:
  struct Rec final : TcpFlow::Callbacks {
    Rec(Core& c, TcpFlow* f) : core(c), flow(f) {}
    void onData(BufferChain& data, bool endStream) override {
      core.checkThread();
      const size_t n = data.size();
      got += flatten(data);
      flow->consumed(n);  // back into lwIP from inside its callback
      if (endStream) fin = true;
    }
    void onWritable() override { core.checkThread(); }
    void onClosed(TcpFlow::CloseReason) override {
      core.checkThread();
      closed = true;
    }
    Core& core;
    TcpFlow* flow;
    std::string got;
    bool fin = false;
    bool closed = false;
  };
  // The app's side of one connection.
  struct App {
    uint32_t seq = 0;  // next from the app
    uint32_t ack = 0;  // next expected from lwIP
  };

  explicit Core(char tag) : tag_(tag) {}

  void start() {
    thread_ = std::this_thread::get_id();
    NetStackOptions opt;
    opt.ipv4 = ip(kTun4);
    opt.ipv6 = ip(kTun6);
    auto r = NetStack::create(opt, *this);
    ASSERT_TRUE(r.ok()) << r.error().toString();
    stack = std::move(r).value();
  }

  void onOutput(const PacketView& packet) override {
    checkThread();
    std::vector<uint8_t> bytes;
    for (int i = 0; i < packet.iovCount; ++i) {
      const auto* b = static_cast<const uint8_t*>(packet.iov[i].iov_base);
      bytes.insert(bytes.end(), b, b + packet.iov[i].iov_len);
    }
    out.push_back(std::move(bytes));
  }
  void onTcpSyn(const FlowKey& key) override {
    checkThread();
    EXPECT_TRUE(stack->acceptPending(key));  // from inside the callback
  }
  void onTcpAccepted(std::unique_ptr<TcpFlow> flow) override {
    checkThread();
    const uint16_t port = flow->key().srcPort;
    auto rec = std::make_unique<Rec>(*this, flow.get());
    flow->setCallbacks(rec.get());
    recs[port] = std::move(rec);
    flows[port] = std::move(flow);
  }
  void onTimerInterval(uint32_t ms) override { intervalMs = ms; }

  void checkThread() {
    EXPECT_EQ(std::this_thread::get_id(), thread_)
        << "core " << tag_ << ": callback on another thread";
  }

  void send(const TcpSegment& s) {
    std::vector<uint8_t> pkt = buildTcp(s);
    stack->input(pkt.data(), pkt.size());
  }
  TcpSegment seg(uint16_t port, uint8_t flags, std::string payload = {}) {
    const App& a = apps[port];
    TcpSegment s;
    s.src = kApp4;
    s.dst = dst;
    s.srcPort = port;
    s.dstPort = kDstPort;
    s.seq = a.seq;
    s.ack = a.ack;
    s.flags = flags;
    s.payload.assign(payload.begin(), payload.end());
    return s;
  }
  // Output packets since the last call, parsed; all must be for `port`
  // but delayed ACKs (pure ACKs) our timer sent for other connections.
  std::vector<ParsedPacket> take(uint16_t port) {
    std::vector<ParsedPacket> v;
    for (auto& bytes : out) {
      ParsedPacket p;
      EXPECT_TRUE(parsePacket(bytes, p));
      EXPECT_TRUE(p.checksumsOk);
      if (p.dstPort != port && p.flags == kAck && p.payload.empty()) continue;
      EXPECT_EQ(p.dstPort, port) << "core " << tag_;
      v.push_back(std::move(p));
    }
    out.clear();
    return v;
  }
  void tick() {
    if (intervalMs != 0) stack->onTimer();
  }

  // The app connects and sends one full-sized segment (marked), which lwIP
  // ACKs from its next fast timer (delayed ACK): that timer must be this
  // stack's, on this thread.
  void openAndSend(int round, uint16_t port) {
    App& a = apps[port];
    a.seq = 1000u + static_cast<uint32_t>(round) * 100000u;
    TcpSegment syn = seg(port, kSyn);
    syn.mss = 1460;
    send(syn);
    auto sa = take(port);
    ASSERT_EQ(sa.size(), 1u);
    ASSERT_EQ(sa[0].flags, kSyn | kAck);
    a.seq += 1;
    a.ack = sa[0].seq + 1;
    send(seg(port, kAck));
    ASSERT_EQ(flows.count(port), 1u) << "core " << tag_ << " port " << port;
    Rec& rec = *recs[port];

    std::string up =
        std::string(1, tag_) + "-up-" + std::to_string(round) + "-" + std::to_string(port);
    up.resize(1460, tag_);  // the MSS: lwIP delays its ACK
    send(seg(port, kAck | kPsh, up));
    a.seq += static_cast<uint32_t>(up.size());
    EXPECT_EQ(rec.got, up) << "core " << tag_;
    for (auto& p : take(port)) EXPECT_TRUE(p.payload.empty());
  }

  // The stack sends marked data; the app ACKs it.
  void receive(int round, uint16_t port) {
    App& a = apps[port];
    const std::string down = std::string(1, tag_) + "-down-" + std::to_string(round) + "-" +
                             std::to_string(port) + std::string(900, tag_);
    BufferChain chain;
    chain.append(std::string_view(down));
    EXPECT_EQ(flows[port]->write(chain), down.size());
    std::string seen;
    for (auto& p : take(port)) seen += std::string(p.payload.begin(), p.payload.end());
    EXPECT_EQ(seen, down) << "core " << tag_;
    a.ack += static_cast<uint32_t>(down.size());
    send(seg(port, kAck));
  }

  void openAndExchange(int round, uint16_t port) {
    openAndSend(round, port);
    receive(round, port);
  }

  // The stack closes first so the pcb ends in TIME_WAIT; the next round's
  // SYN on the same 4-tuple reuses it.
  void close(uint16_t port) {
    App& a = apps[port];
    flows[port]->shutdownWrite();
    auto fin = take(port);
    ASSERT_FALSE(fin.empty());
    EXPECT_NE(fin.back().flags & kFin, 0);
    a.ack += 1;
    send(seg(port, kFin | kAck));  // TIME_WAIT in lwIP
    a.seq += 1;
    EXPECT_TRUE(recs[port]->fin);
    EXPECT_FALSE(flows[port]->isOpen());
    out.clear();
    flows.erase(port);
    recs.erase(port);
  }

  // `rounds` rounds over `n` 4-tuples; if `destroyAfter` >= 0, the stack
  // is destroyed with its flows open after that round and a new one made.
  void run(int rounds, uint16_t n, int destroyAfter) {
    start();
    uint64_t accepted = 0;
    for (int round = 0; round < rounds; ++round) {
      for (uint16_t i = 0; i < n; ++i) {
        openAndSend(round, kFirstPort + i);
        if (i % 8 == 0) tick();
      }
      for (uint16_t i = 0; i < n; ++i) {
        receive(round, kFirstPort + i);
        if (i % 8 == 0) tick();
      }
      if (round == destroyAfter) {
        accepted += stack->stats().flowsAccepted;
        stack.reset();  // flows still open: they outlive it, dead
        for (auto& [port, flow] : flows) EXPECT_FALSE(flow->isOpen());
        flows.clear();
        recs.clear();
        out.clear();
        start();
        continue;
      }
      for (uint16_t i = 0; i < n; ++i) {
        close(kFirstPort + i);
        if (i % 8 == 0) tick();
      }
      std::this_thread::yield();
    }
    accepted += stack->stats().flowsAccepted;
    EXPECT_EQ(accepted, static_cast<uint64_t>(rounds) * n) << "core " << tag_;
    EXPECT_EQ(stack->stats().rstSent, 0u);
    stack.reset();
  }

  std::unique_ptr<NetStack> stack;
  std::vector<std::vector<uint8_t>> out;
  std::map<uint16_t, std::unique_ptr<TcpFlow>> flows;
  std::map<uint16_t, std::unique_ptr<Rec>> recs;
  std::map<uint16_t, App> apps;
  uint32_t intervalMs = 0;
  const char* dst = kDst;  // what the app connects to

 private:
  char tag_;
  std::thread::id thread_;
};

// Two cores on two threads, the same 4-tuples on both at the same time,
// TIME_WAIT reuse on both, and one core's stack destroyed (flows open) and
// recreated while the other keeps going.
TEST(NetStackMultiTest, TwoStacksOnTwoThreadsWithTheSameFourTuples) {
  constexpr int kRounds = 12;
  constexpr uint16_t kFlows = 256;
  Core a('A');
  Core b('B');
  std::thread ta([&] { a.run(kRounds, kFlows, -1); });
  std::thread tb([&] { b.run(kRounds, kFlows, 2); });
  ta.join();
  tb.join();
}

// One thread, two stacks: each one's lwIP clock advances with its own
// timer only. lwIP has one tcp_ticks and one fast/slow alternation; shared,
// a TIME_WAIT in one stack ended twice as fast while the other stack
// ticked too, and the other never ran a slow tick.
TEST(NetStackMultiTest, EachStackKeepsItsOwnTcpClock) {
  Core a('A');
  Core b('B');
  a.start();
  b.start();
  // A's clock runs 1 s ahead of B's (A ticked alone first): a timer that
  // judged B's pcbs by A's clock (or A's by B's) would end them early.
  // elapsed: ms of a stack's own timer since its pcb entered TIME_WAIT.
  uint64_t elapsedA = 0;
  uint64_t elapsedB = 0;
  uint64_t goneA = 0;
  uint64_t goneB = 0;
  a.openAndExchange(0, kFirstPort);
  a.close(kFirstPort);
  for (int i = 0; i < 20; ++i) {
    elapsedA += a.intervalMs;
    a.stack->onTimer();
  }
  ASSERT_EQ(a.stack->timeWaitCount(), 1u);
  b.openAndExchange(0, kFirstPort);
  b.close(kFirstPort);
  // Both tick, as two loops would.
  for (int i = 0; i < 1000 && (goneA == 0 || goneB == 0); ++i) {
    for (auto [c, elapsed, gone] :
         {std::tuple{&a, &elapsedA, &goneA}, std::tuple{&b, &elapsedB, &goneB}}) {
      if (*gone != 0) continue;
      *elapsed += c->intervalMs;
      c->stack->onTimer();
      if (c->stack->timeWaitCount() == 0) *gone = *elapsed;
    }
  }
  EXPECT_GE(goneA, 2000u);
  EXPECT_LE(goneA, 2600u);
  EXPECT_GE(goneB, 2000u);
  EXPECT_LE(goneB, 2600u);
  // Nothing left: both stop asking for the timer.
  EXPECT_FALSE(a.stack->timerNeeded());
  EXPECT_FALSE(b.stack->timerNeeded());
  a.stack.reset();
  b.stack.reset();
}

// Destroying one stack leaves the other's connections (same 4-tuple, same
// TUN address) alone, and new stacks work beside the survivor. The app
// connects to the TUN's own address: lwIP's netif_remove aborts the pcbs
// on a removed netif's addresses, and must spare the other netif's.
TEST(NetStackMultiTest, DestroyingOneStackSparesTheOthersFlows) {
  Core a('A');
  Core b('B');
  a.dst = kTun4;
  b.dst = kTun4;
  a.start();
  b.start();
  a.openAndExchange(0, kFirstPort);
  b.openAndExchange(0, kFirstPort);
  a.stack.reset();
  a.flows.clear();
  a.recs.clear();
  EXPECT_TRUE(b.flows[kFirstPort]->isOpen());
  EXPECT_FALSE(b.recs[kFirstPort]->closed);
  EXPECT_EQ(b.stack->flowCount(), 1u);
  // B's flow still moves data both ways, and a new A takes the 4-tuple.
  a.start();
  a.openAndExchange(1, kFirstPort);
  const std::string more = "still here";
  b.send(b.seg(kFirstPort, kAck | kPsh, more));
  EXPECT_EQ(b.recs[kFirstPort]->got.substr(b.recs[kFirstPort]->got.size() - more.size()), more);
  b.apps[kFirstPort].seq += static_cast<uint32_t>(more.size());
  b.out.clear();
  b.close(kFirstPort);
  a.close(kFirstPort);
  a.stack.reset();
  b.stack.reset();
}

}  // namespace
}  // namespace vt::netstack
