// The whole TUN input path: every fuzz input is one packet handed to a real
// NetStack (our header parser, SYN gating, UDP parsing and reassembly, then
// lwIP). The owner (netstack_owner.h) accepts half of the SYNs, echoes
// every UDP datagram and keeps accepted flows for a while, so later inputs
// reach established pcbs too.
// Checks: no crash, no sanitizer report, outputs well-formed.
#include <memory>
#include <vector>

#include "fuzz_util.h"
#include "netstack/ip_packet.h"
#include "netstack/net_stack.h"
#include "netstack/tcp_flow.h"
#include "netstack_owner.h"

using namespace vt;
using namespace vt::netstack;

namespace {

class Owner : public fuzz::NetStackOwner {
 public:
  void onOutput(const PacketView& packet) override {
    fuzz::check(packet.size > 0 && packet.size <= 65535 + 40, "output size");
    size_t sum = 0;
    for (int i = 0; i < packet.iovCount; ++i) sum += packet.iov[i].iov_len;
    fuzz::check(sum == packet.size, "iovecs add up");
  }
};

Owner& owner() {
  static Owner* o = [] {
    auto* own = new Owner;
    auto s = NetStack::create(fuzz::NetStackOwner::options(), *own);
    fuzz::check(s.ok(), "NetStack::create");
    own->stack = s.value().release();  // lives for the whole run
    return own;
  }();
  return *o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Owner& o = owner();
  o.retireFlows();
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
