// A NetStack owner that ignores everything: for tests that use the stack
// only as a TunPump's reader side.
#pragma once

#include <cstdint>
#include <memory>

#include "netstack/net_stack.h"

namespace vt::client::test_support {

class NullStackOwner final : public netstack::NetStack::Callbacks {
 public:
  void onOutput(const netstack::PacketView&) override {}
  void onTcpSyn(const netstack::FlowKey&) override {}
  void onTcpAccepted(std::unique_ptr<netstack::TcpFlow>) override {}
  void onTimerInterval(uint32_t) override {}
};

}  // namespace vt::client::test_support
