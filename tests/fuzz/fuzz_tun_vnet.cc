// TunPump with TUN offload (IFF_VNET_HDR): every read is a virtio_net_hdr
// and a packet, as the kernel hands them. The input is up to 16 records
// (a 2-byte big-endian length, then that many bytes), each sent as one
// datagram on a socketpair that stands in for the TUN fd; a real TunPump
// reads them (takes the header off, refuses GSO types it never offered,
// completes partial checksums of what is not TCP or UDP) into a real
// NetStack. What the NetStack answers goes back out through the same pump
// (its vnet header in front) and is read off the other end and checked.
// Checks: no crash, no sanitizer report, every write has its header, and
// the pump counts every read once (taken or dropped).
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "client/tun_pump.h"
#include "event/loop.h"
#include "fuzz_util.h"
#include "netstack/net_stack.h"
#include "netstack_owner.h"

using namespace vt;
using namespace vt::netstack;

namespace {

struct Bed : public fuzz::NetStackOwner {
  event::Loop loop;
  std::unique_ptr<client::TunPump> pump;
  int fds[2] = {-1, -1};

  void onOutput(const PacketView& packet) override {
    if (pump) pump->writePacket(packet);
  }

  // What the pump wrote: each datagram is a vnet header and a packet.
  void drainWrites() {
    static uint8_t buf[70000];
    for (;;) {
      ssize_t n = ::recv(fds[1], buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) {
        fuzz::check(errno == EAGAIN || errno == EWOULDBLOCK, "recv of the pump's writes");
        return;
      }
      fuzz::check(static_cast<size_t>(n) > client::TunPump::kVnetHeaderBytes,
                  "a write carries its vnet header and a packet");
    }
  }
};

Bed& bed() {
  static Bed* b = [] {
    auto* bd = new Bed;
    fuzz::check(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, bd->fds) == 0, "socketpair");
    int big = 1 << 20;
    ::setsockopt(bd->fds[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    ::setsockopt(bd->fds[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    auto s = NetStack::create(fuzz::NetStackOwner::options(), *bd);
    fuzz::check(s.ok(), "NetStack::create");
    bd->stack = s.value().release();  // lives for the whole run
    bd->pump = std::make_unique<client::TunPump>(bd->loop, bd->fds[0], *bd->stack, 1500,
                                                 /*vnetHeader=*/true);
    fuzz::check(bd->pump->start().ok(), "TunPump::start");
    return bd;
  }();
  return *b;
}

uint64_t readsSeen(const client::TunPumpStats& s) {
  return s.packetsIn + s.offloadDropped + s.readDropped;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bed& b = bed();
  b.retireFlows();
  const uint64_t before = readsSeen(b.pump->stats());
  uint64_t sent = 0;
  size_t pos = 0;
  for (int rec = 0; rec < 16 && pos + 2 <= size; ++rec) {
    size_t len = (static_cast<size_t>(data[pos]) << 8) | data[pos + 1];
    pos += 2;
    if (len > size - pos) len = size - pos;
    if (len == 0) continue;  // an empty read is end of file to the pump, never a TUN's
    ssize_t n = ::send(b.fds[1], data + pos, len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The datagram queue is short (net.unix.max_dgram_qlen): let the
      // pump read what is queued, then try again.
      b.loop.runOnce(false);
      b.drainWrites();
      n = ::send(b.fds[1], data + pos, len, MSG_DONTWAIT);
    }
    if (n == static_cast<ssize_t>(len)) ++sent;
    pos += len;
  }
  for (int i = 0; i < 4; ++i) {
    b.loop.runOnce(false);
    b.drainWrites();
  }
  // Every datagram sent was read and either taken or dropped, counted once.
  fuzz::check(readsSeen(b.pump->stats()) - before == sent, "each read counted once");
  if (size > 0 && data[size - 1] % 5 == 0) b.stack->onTimer();
  b.drainWrites();
  return 0;
}
