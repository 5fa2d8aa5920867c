// The NetStack owner of the fuzz targets that drive a whole NetStack
// (fuzz_netstack_input, fuzz_tun_vnet): it accepts half of the SYNs and
// refuses the other half (by port, so both paths run), keeps accepted flows
// and drains what they receive, and echoes every UDP datagram, so later
// inputs reach established pcbs too. Where the stack's output goes is the
// target's own (onOutput). Flows are retired only between inputs
// (retireFlows), never inside a NetStack callback.
#pragma once

#include <memory>
#include <vector>

#include "netstack/net_stack.h"
#include "netstack/tcp_flow.h"

namespace vt::fuzz {

class NetStackOwner : public netstack::NetStack::Callbacks, public netstack::TcpFlow::Callbacks {
 public:
  netstack::NetStack* stack = nullptr;

  void onTcpSyn(const netstack::FlowKey& key) override {
    if (key.dstPort % 2 == 0) {
      stack->acceptPending(key);
    } else {
      stack->rejectPending(key);
    }
  }
  void onTcpAccepted(std::unique_ptr<netstack::TcpFlow> flow) override {
    flow->setCallbacks(this);
    flows_.push_back(std::move(flow));
  }
  void onTimerInterval(uint32_t) override {}
  bool onUdp(const netstack::UdpEndpoint& app, const netstack::UdpEndpoint& dst,
             BufferChain&& payload) override {
    stack->sendUdp(dst, app, payload);
    return true;
  }
  void onData(BufferChain& data, bool) override { data.drain(data.size()); }
  void onWritable() override {}
  void onClosed(netstack::TcpFlow::CloseReason) override {}

  // At the start of an input: the flows retired last time go, and all of
  // them are retired once there are more than 32.
  void retireFlows() {
    retired_.clear();
    if (flows_.size() > 32) {
      for (auto& f : flows_) retired_.push_back(std::move(f));
      flows_.clear();
    }
  }

  // A stack for 198.18.2.1 and 2001:db8:2::1 with room for 64 flows.
  static netstack::NetStackOptions options() {
    netstack::NetStackOptions opt;
    netstack::IpAddress v4, v6;
    netstack::IpAddress::parse("198.18.2.1", v4);
    netstack::IpAddress::parse("2001:db8:2::1", v6);
    opt.ipv4 = v4;
    opt.ipv6 = v6;
    opt.maxFlows = 64;
    opt.maxPendingSyns = 16;
    return opt;
  }

 private:
  std::vector<std::unique_ptr<netstack::TcpFlow>> flows_;
  std::vector<std::unique_ptr<netstack::TcpFlow>> retired_;
};

}  // namespace vt::fuzz
