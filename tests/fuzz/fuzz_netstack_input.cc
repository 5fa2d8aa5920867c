// The whole TUN input path: every fuzz input is one packet handed to a real
// NetStack (our header parser, SYN gating, UDP parsing and reassembly, then
// lwIP). The owner accepts every SYN, echoes every UDP datagram and keeps
// accepted flows for a while, so later inputs reach established pcbs too.
// Checks: no crash, no sanitizer report, outputs well-formed.
#include <memory>
#include <vector>

#include "fuzz_util.h"
#include "netstack/ip_packet.h"
#include "netstack/net_stack.h"
#include "netstack/tcp_flow.h"

using namespace vt;
using namespace vt::netstack;

namespace {

class Owner : public NetStack::Callbacks, public TcpFlow::Callbacks {
 public:
  NetStack* stack = nullptr;
  std::vector<std::unique_ptr<TcpFlow>> flows;
  std::vector<std::unique_ptr<TcpFlow>> retired;

  void onOutput(const PacketView& packet) override {
    fuzz::check(packet.size > 0 && packet.size <= 65535 + 40, "output size");
    size_t sum = 0;
    for (int i = 0; i < packet.iovCount; ++i) sum += packet.iov[i].iov_len;
    fuzz::check(sum == packet.size, "iovecs add up");
  }
  void onTcpSyn(const FlowKey& key) override {
    // Half accepted, half refused, chosen by the port: both paths run.
    if (key.dstPort % 2 == 0) {
      stack->acceptPending(key);
    } else {
      stack->rejectPending(key);
    }
  }
  void onTcpAccepted(std::unique_ptr<TcpFlow> flow) override {
    flow->setCallbacks(this);
    flows.push_back(std::move(flow));
  }
  void onTimerInterval(uint32_t) override {}
  bool onUdp(const UdpEndpoint& app, const UdpEndpoint& dst, BufferChain&& payload) override {
    stack->sendUdp(dst, app, payload);
    return true;
  }
  // TcpFlow: consume what arrives and write a little back.
  void onData(BufferChain& data, bool) override {
    data.drain(data.size());
  }
  void onWritable() override {}
  void onClosed(TcpFlow::CloseReason) override {}
};

Owner& owner() {
  static Owner* o = [] {
    auto* own = new Owner;
    NetStackOptions opt;
    IpAddress v4, v6;
    IpAddress::parse("198.18.2.1", v4);
    IpAddress::parse("2001:db8:2::1", v6);
    opt.ipv4 = v4;
    opt.ipv6 = v6;
    opt.maxFlows = 64;
    opt.maxPendingSyns = 16;
    auto s = NetStack::create(opt, *own);
    fuzz::check(s.ok(), "NetStack::create");
    own->stack = s.value().release();  // lives for the whole run
    return own;
  }();
  return *o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Owner& o = owner();
  // Flows are only destroyed here, never inside a NetStack callback.
  o.retired.clear();
  if (o.flows.size() > 32) {
    for (auto& f : o.flows) o.retired.push_back(std::move(f));
    o.flows.clear();
  }
  IpPacketInfo info;
  (void)parseIpPacket(data, size, info);
  if (size <= 65535) {
    InputBuffer buf = o.stack->allocInput(size ? size : 1);
    if (buf.valid() && buf.capacity() >= size) {
      if (size) std::memcpy(buf.data(), data, size);
      o.stack->input(std::move(buf), size);
    }
  }
  // Time passes now and then so that timers (retransmits, reassembly
  // expiry, pending SYN expiry) run as well.
  if (size > 0 && data[0] == 0x45 && size % 7 == 0) o.stack->onTimer();
  return 0;
}
