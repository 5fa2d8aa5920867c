// UdpSession: everything one app UDP socket (address:port behind the TUN)
// sends through the tunnel, and the replies injected back to it.
//
//   app --onUdp--> Client --> UdpSession --> UdpChannel (one per remote in
//                                             separated/v0 mode, one in classic)
//   app <--NetStack::sendUdp(from, app)-- UdpSession <-- channel datagrams
//
// Separated mode: all channels carry the session's random 8-byte
// udp_session id, so the server gives every remote the same port (full
// cone); a FLAG 1 datagram from B reaches the app as from B. Channels are
// capped at udp.max_channels (the least recently active one is closed).
// DNS hijack: a query the Client redirected to the resolver remembers the
// address the app asked (by DNS id, bounded), and the resolver's reply is
// injected from there; answers are offered to the Client's DnsCache.
//
// Lifetime: a session is "assured" once the app sent again after a reply
// came (more than one exchange). Until then it closes udp.new_session_timeout
// after its last datagram either way (a DNS lookup, an NTP query: the app
// has likely closed its socket, which we cannot see), once assured
// udp.idle_timeout after it, as kernel NATs time out unreplied/assured
// flows. At udp.max_sessions the Client evicts the least recently active
// session, unassured ones first.
// Routing rules may send some remotes `direct`: those datagrams leave by
// the session's own UDP socket (opened on the first, marked and protected
// so that it skips the TUN), and whatever comes back to that socket, from
// any source, reaches the app like the server's datagrams (full cone: the
// kernel keeps one mapping per socket). Counted with the rest, and
// separately on the close line.
// One INFO line at close. Deleted through the loop's deferred delete.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "buffer/buffer_chain.h"
#include "core/tiered_lru.h"
#include "event/loop.h"
#include "event/timer.h"
#include "netstack/flow_key.h"

namespace vt::event {
class UdpSocket;
}

namespace vt::client {

class Client;
class UdpChannel;

class UdpSession final : public event::DeferredDeletable {
 public:
  UdpSession(Client& client, const netstack::UdpEndpoint& app, uint64_t sessionId);
  ~UdpSession() override;
  UdpSession(const UdpSession&) = delete;
  UdpSession& operator=(const UdpSession&) = delete;

  // A datagram from the app for `remote`; `shown` is the address the app
  // sent it to (differs from `remote` for a hijacked DNS query).
  void send(const netstack::UdpEndpoint& remote, const netstack::UdpEndpoint& shown,
            BufferChain&& payload);
  // A datagram a routing rule sends direct to `remote` (`shown`: what the
  // app sent it to; differs for a query sent to dns.direct_resolver).
  void sendDirect(const netstack::UdpEndpoint& remote, const netstack::UdpEndpoint& shown,
                  BufferChain&& payload);
  // Idempotent: closes every channel, logs, hands itself to the Client.
  void close(const char* reason);

  const netstack::UdpEndpoint& app() const { return app_; }
  uint64_t id() const { return id_; }
  uint64_t sessionId() const { return sessionId_; }
  bool closed() const { return closed_; }
  uint64_t startMs() const { return startMs_; }
  // Payload bytes through the server (direct datagrams are counted apart).
  uint64_t upBytes() const { return upBytes_; }
  uint64_t downBytes() const { return downBytes_; }
  uint64_t lastActivityMs() const { return lastActivityMs_; }
  size_t channelCount() const { return channels_.size(); }
  // The app sent again after a reply came.
  bool assured() const { return assured_; }

  // For UdpChannel.
  Client& client() { return client_; }
  uint64_t nextChannelId() { return ++channelSeq_; }
  void onChannelDatagram(UdpChannel& ch, const netstack::UdpEndpoint& from, BufferChain& payload);
  void onChannelClosed(UdpChannel& ch);
  void countDrops(uint64_t n) { drops_ += n; }
  // A channel ended by an error before anything came back (the server is
  // down or refuses): no new channel for a growing pause (200 ms doubling
  // to 2 s, over as soon as any connection to the server works again), so
  // a chatty app socket does not dial the server per datagram.
  // Returns true when this failure starts a streak (worth a WARN).
  bool onChannelFailed();
  bool inDialBackoff() const { return dialBackoffMs_ != 0; }
  static constexpr uint64_t kFirstBackoffMs = 200;
  static constexpr uint64_t kMaxBackoffMs = 2'000;

 private:
  friend class Client;
  void touch();
  // A datagram from the app: counted, the session touched (and assured
  // when a reply came before).
  void countUp(size_t bytes);
  // udp.idle_timeout once assured, else udp.new_session_timeout.
  uint64_t idleTimeoutMs() const;
  void armTimer();
  void onTimer();
  // An answer of a resolver we redirected a query to: cached and taught to
  // the routing names when it answers a query of ours; returns the address
  // the app asked, to answer from.
  netstack::UdpEndpoint onDnsAnswer(const BufferChain& payload);
  // To the app from `from` (unmapped or mapped to the app's family).
  void deliver(netstack::UdpEndpoint from, BufferChain& payload);
  void rememberDnsOrigin(const BufferChain& payload, const netstack::UdpEndpoint& shown);
  netstack::UdpEndpoint dnsOrigin(const BufferChain& payload) const;

  Client& client_;
  event::Loop& loop_;
  netstack::UdpEndpoint app_;
  uint64_t id_;
  uint64_t sessionId_;
  uint64_t startMs_;
  uint64_t lastActivityMs_;
  TieredLru<UdpSession>::Handle lru_;
  event::Timer timer_;
  // Keyed by remote (separated, v0); classic keeps its one channel under
  // the default (empty) endpoint.
  std::unordered_map<netstack::UdpEndpoint, std::unique_ptr<UdpChannel>,
                     netstack::UdpEndpointHash>
      channels_;
  // DNS id -> the address the app queried and the query's one question
  // (wire name, type, class; empty when the query had not exactly one):
  // an answer is cached only when it matches an outstanding query (a
  // spoofed datagram from the resolver's address must not poison the
  // cache). Bounded FIFO.
  struct DnsQuery {
    netstack::UdpEndpoint shown;
    std::string question;
  };
  std::unordered_map<uint16_t, DnsQuery> dnsOrigins_;
  std::deque<uint16_t> dnsOrder_;
  netstack::UdpEndpoint lastDnsShown_;
  uint64_t channelSeq_ = 0;
  uint64_t channelsOpened_ = 0;
  uint64_t upPackets_ = 0, upBytes_ = 0, downPackets_ = 0, downBytes_ = 0, drops_ = 0;
  std::unique_ptr<event::UdpSocket> direct_;  // opened on the first direct datagram
  uint64_t directUp_ = 0, directDown_ = 0;    // datagrams
  uint64_t dialBackoffMs_ = 0;  // 0: no failure streak
  uint64_t noDialUntilMs_ = 0;
  uint64_t failedAtMs_ = 0;     // the streak's last failure
  bool replied_ = false;  // a datagram came back from the server
  bool assured_ = false;  // ... and the app sent after that
  bool closed_ = false;
};

}  // namespace vt::client
