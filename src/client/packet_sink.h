// PacketSink: where the Client sends the NetStack's outgoing IP packets
// (the TUN in vless-tun, a recorder in tests).
#pragma once

#include "netstack/net_stack.h"

namespace vt::client {

class PacketSink {
 public:
  // One packet; its bytes are valid only during the call.
  virtual void writePacket(const netstack::PacketView& packet) = 0;

 protected:
  ~PacketSink() = default;
};

}  // namespace vt::client
