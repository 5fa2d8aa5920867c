// UDP pieces of the server tests: reflectors (plain threads, blocking
// sockets, independent of the code under test) and a client-side reader
// for the three VLESS UDP framings.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "buffer/buffer_chain.h"
#include "codec/address.h"
#include "codec/vless.h"

namespace vt::server::testing {

// Echoes every datagram back to its source, prefixed with `tag`, and
// records each source as "ip:port". Listens on 127.0.0.1:P and, when
// `also_v6`, on [::1]:P (same P), so that "localhost" reaches it whichever
// address the resolver gives first.
class UdpReflector {
 public:
  explicit UdpReflector(std::string tag = "", bool also_v6 = false);
  ~UdpReflector();
  uint16_t port() const { return port_; }
  std::vector<std::string> sources();
  std::vector<uint16_t> sourcePorts();
  size_t received();
  // Waits until at least `n` datagrams arrived.
  bool waitReceived(size_t n, int timeout_ms);

 private:
  void run();

  std::string tag_;
  int fd4_ = -1;
  int fd6_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> sources_;
};

// A plain UDP socket on 127.0.0.1:0.
class UdpProbe {
 public:
  UdpProbe();
  ~UdpProbe();
  uint16_t port() const { return port_; }
  bool sendTo(uint16_t port, const std::string& data);
  // One datagram or nullopt at the deadline.
  std::optional<std::string> recv(int timeout_ms);

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

codec::Request udpRequest(uint8_t version, const codec::Uuid& uuid, const codec::Address& target,
                          bool multi = false, std::optional<uint64_t> session = std::nullopt);
std::string lengthPacket(const std::string& payload);
std::string classicPacket(const codec::Address& to, const std::string& payload);

enum class Framing { kLength, kClassic, kMultiDown };
struct Datagram {
  std::optional<codec::Address> address;  // classic: source; multi: FLAG 1 source
  std::string payload;
};

// Reads framed datagrams from a connected TCP socket.
class PacketReader {
 public:
  PacketReader(int fd, Framing framing) : fd_(fd), framing_(framing) {}
  // Next datagram, or nullopt at the deadline / EOF / malformed input.
  std::optional<Datagram> next(int timeout_ms = 3000);
  // Raw bytes (the v0 response header).
  std::string raw(size_t n, int timeout_ms = 3000);
  bool eof() const { return eof_; }

 private:
  bool fill(int timeout_ms);
  int fd_;
  Framing framing_;
  BufferChain buf_;
  bool eof_ = false;
};

// Opens a TCP connection to the server and sends the request header plus
// `first` (already framed). Returns the fd (or -1).
int openChannel(uint16_t server_port, const codec::Request& req, const std::string& first = "");

}  // namespace vt::server::testing
