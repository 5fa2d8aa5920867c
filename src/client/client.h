// Client: the core of vless-tun. Owns the NetStack (lwIP behind the TUN),
// its timer, the table of TcpSessions and the outbound factory (TLS context
// built once, server address resolved without blocking and cached).
//
//   TUN -> TunPump -> NetStack --onTcpSyn--> Client --> TcpSession
//                                                        |-> TcpFlow (app side)
//                                                        '-> Vless[Tls[Tcp]] -> server
//
// The table is keyed by FlowKey and kept in LRU order of I/O activity; at
// max_flows the least recently active session is evicted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "stream/buffer_budget.h"
#include "client/connection_pool.h"
#include "client/ip_tunnel.h"
#include "client/mux_pool.h"
#include "client/packet_sink.h"
#include "codec/vless.h"
#include "config/client_config.h"
#include "core/error.h"
#include "core/tiered_lru.h"
#include "event/log_summary.h"
#include "event/loop.h"
#include "client/server_name_resolver.h"
#include "event/resolver.h"
#include "event/socket_address.h"
#include "event/timer.h"
#include "netstack/net_stack.h"
#include "route/geoip.h"
#include "route/rule_set.h"
#include "stream/stream.h"
#include "stream/tcp_stream.h"
#include "stream/vless_client_stream.h"

namespace vt::tls {
class TlsContext;
}
namespace vt::event {
class UdpSocket;
}

namespace vt::client {

class DialledIps;
class DnsCache;
class DnsNames;
class TcpSession;
class UdpSession;

struct ClientStats {
  uint64_t flowsOpened = 0;  // sessions created (SYNs taken)
  uint64_t flowsClosed = 0;
  uint64_t evicted = 0;
  uint64_t ipv6Refused = 0;   // IPv6 SYNs refused: route.carry_ipv6 = false
  uint64_t loopsRefused = 0;  // SYNs to the server itself through the TUN
  uint64_t connectFailed = 0;
  uint64_t bytesUp = 0;  // app -> server, payload
  uint64_t bytesDown = 0;
  // UDP (per app endpoint sessions) and DNS hijack.
  uint64_t udpSessionsOpened = 0;
  uint64_t udpSessionsClosed = 0;
  uint64_t udpEvicted = 0;          // sessions, at udp.max_sessions
  uint64_t udpChannelsEvicted = 0;  // channels, at udp.max_channels
  uint64_t udpDatagramsUp = 0;
  uint64_t udpBytesUp = 0;
  uint64_t udpDatagramsDown = 0;
  uint64_t udpBytesDown = 0;
  uint64_t udpDrops = 0;          // summed when sessions close
  uint64_t udpQueueOverflow = 0;  // of those: channel connect queue full
  uint64_t udpBackoffDrops = 0;   // of those: no new channel right after a failed one
  uint64_t udpRefused = 0;        // onUdp said no (stopped, IPv6 not carried)
  uint64_t dnsHijacked = 0;       // UDP queries redirected to dns.resolver
  uint64_t dnsTcpHijacked = 0;    // TCP port-53 flows redirected
  uint64_t dnsCacheHits = 0;      // answered without the tunnel
  uint64_t dnsUnmatched = 0;      // resolver answers (UDP, TCP) not cached: no matching query
  // CmdIP (the rest is in IpTunnelStats): raw packets not sent to the tunnel.
  uint64_t ipNotRoutable = 0;  // to multicast, broadcast, link-local, loopback, unspecified
  uint64_t ipRefusedV6 = 0;    // IPv6 with route.carry_ipv6 = false
  uint64_t ipNotCarried = 0;   // handed over by another worker once stopping
  // Workers: datagrams and raw packets handed to their owner worker, and
  // those dropped because its queue was full (counted by the sender).
  uint64_t handedOver = 0;
  uint64_t handOverDrops = 0;
  // Network changes (rtnetlink, or an embedder's vless_tun_network_changed).
  uint64_t networkChanges = 0;
  uint64_t networkClosed = 0;  // server connections closed: their local address was gone
  // Routing rules ([[route.rules]]): TCP flows and UDP datagrams a rule (or
  // the default) sent direct or blocked; the rest went to the server.
  uint64_t flowsDirect = 0;
  uint64_t flowsBlocked = 0;
  uint64_t udpDirect = 0;   // datagrams sent direct
  uint64_t udpBlocked = 0;  // datagrams dropped by a block rule
  // TCP flows whose first bytes were read for a name (rules name domains
  // and the address had none from DNS): found (TLS SNI, HTTP Host) or not.
  uint64_t namesSniffed = 0;
  uint64_t sniffMisses = 0;
  uint64_t dnsDirect = 0;  // queries a direct rule sent to dns.direct_resolver
};

struct FlowKeyHash {
  size_t operator()(const netstack::FlowKey& k) const noexcept;
};

// What an embedder adds to the config (include/vless_tun.h).
struct ClientHooks {
  // Called with every socket towards the network before it connects (the
  // server connections, the name lookups of the server): Android's
  // VpnService.protect(). False fails that dial.
  std::function<bool(int fd)> protect;
  // Nameservers for looking the server's name up outside the tunnel
  // (instead of /etc/resolv.conf's).
  std::vector<event::SocketAddress> nameservers;
  // Workers (engine/engine.cc): a UDP session lives on its app endpoint's
  // home worker, and CmdIP on worker 0. udpElsewhere is asked when this
  // client has no session for the datagram's app endpoint, just before it
  // would open one: false, this client is (now) its home; true, the
  // datagram is not this client's and the hook has queued a copy for the
  // home or dropped and counted it. udpSessionClosed: this client's
  // session for `app` closed. Unset: everything is this client's.
  std::function<bool(const netstack::UdpEndpoint& app, const netstack::UdpEndpoint& dst,
                     const BufferChain& payload)>
      udpElsewhere;
  std::function<void(const netstack::UdpEndpoint& app)> udpSessionClosed;
  std::function<bool(const uint8_t* packet, size_t len)> otherPacketElsewhere;
  // The workers' shared DNS cache (null: the client makes its own when
  // dns.hijack is on and dns.cache_size > 0).
  std::shared_ptr<DnsCache> dnsCache;
  // The workers' shared map of addresses to the names they were answered
  // for (null: the client makes its own when rules name domains).
  std::shared_ptr<DnsNames> dnsNames;
  // ... and of the addresses the server dialled for names (want_ip).
  std::shared_ptr<DialledIps> dialledIps;
  // Ids of flows, UDP sessions and mux connections (logs, stats): worker i
  // of n numbers them i+1, i+1+n, ... so that they stay unique per process.
  uint64_t idFirst = 1;
  uint64_t idStride = 1;
};

class Client final : private netstack::NetStack::Callbacks, private IpTunnelHost {
 public:
  // Builds the NetStack (one per process) and, when cfg.server.tls, the
  // TLS context (loads the CA file). Packets for the TUN go to the sink
  // given to setPacketSink (dropped while there is none).
  static Result<std::unique_ptr<Client>> create(event::Loop& loop, const config::ClientConfig& cfg,
                                                ClientHooks hooks = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void setPacketSink(PacketSink* sink) { sink_ = sink; }
  netstack::NetStack& stack() { return *stack_; }
  // The TLS context of the outbound connections (null without TLS).
  const tls::TlsContext* tlsContext() const { return tls_.get(); }
  // Starts resolving the server name (no-op for an IP literal).
  void start();
  // Resets every session (reason=shutdown) and refuses new SYNs.
  void stop();
  // The network under the tunnel changed: idle pooled connections and the
  // warm mux connection are dropped, the DNS cache emptied, and a server
  // name looked up again. With `localAddresses` (the host's usable
  // addresses, as text), every server connection whose local address is
  // not among them can no longer work: it is closed now (its flows reset,
  // its UDP sessions re-dial with the same session id, so the server keeps
  // their mapping). Connections on addresses that remain are left alone.
  // Returns how many connections were closed.
  // Also closed: connections whose address remains but from which the
  // server is no longer reached (the kernel now picks another source for
  // it: the default route moved).
  size_t networkChanged(const std::vector<std::string>* localAddresses = nullptr);
  // The source address the kernel would use for `peer` now (marked and
  // protected like a server connection); nullopt without a route.
  std::optional<std::string> preferredSourceFor(const event::SocketAddress& peer);
  // Diagnostics (stats JSON): every live session.
  template <typename Fn>
  void forEachSession(Fn&& fn) const {
    for (const TcpSession* s : lru_) fn(*s);
  }
  template <typename Fn>
  void forEachUdpSession(Fn&& fn) const {
    for (const auto& [app, s] : udpSessions_) fn(*s);
  }
  const std::vector<event::SocketAddress>& serverAddresses() const { return serverAddrs_; }
  // The operator's control socket (client_ops.cc): one line naming the
  // live TCP flow or UDP session with that id ("" if none), and closing it
  // (TCP: a reset to the app; false if none).
  std::string describeFlow(uint64_t id) const;
  bool closeFlow(uint64_t id);
  // A reload's routing rules ([[route.rules]], default_action, the geoip
  // database): new flows and datagrams are judged by them, live flows keep
  // their route. Replaceable only when what the client set up for the old
  // rules still fits (rules or none, domain conditions or none, geoip or
  // none: the DNS name map and want_ip cache exist or not); else a restart.
  bool rulesReplaceable(const config::ClientRulesConfig& r) const;
  void setRules(const config::ClientRulesConfig& r);

  size_t sessionCount() const { return sessions_.size(); }
  size_t udpSessionCount() const { return udpSessions_.size(); }
  // The live session of an app endpoint, or null (tests, diagnostics).
  UdpSession* findUdpSession(const netstack::UdpEndpoint& app) {
    auto it = udpSessions_.find(app);
    return it == udpSessions_.end() ? nullptr : it->second.get();
  }
  // Null when dns.hijack is off or dns.cache_size is 0.
  DnsCache* dnsCache() { return dnsCache_.get(); }
  // dns.resolver when dns.hijack is on.
  const std::optional<netstack::UdpEndpoint>& dnsResolver() const { return resolverEp_; }
  // dns.direct_resolver when dns.hijack is on and routing rules exist.
  const std::optional<netstack::UdpEndpoint>& directResolver() const { return directResolverEp_; }
  // A TCP flow to port 53 (any address) goes to dns.resolver instead.
  bool hijacksDns(const netstack::FlowKey& key) const {
    return resolverEp_.has_value() && key.dstPort == 53;
  }
  const ClientStats& stats() const { return stats_; }
  // From another worker (the hooks above sent it here): handled as if
  // read from this client's own TUN queue.
  void udpFromWorker(const netstack::UdpEndpoint& app, const netstack::UdpEndpoint& dst,
                     BufferChain&& payload) {
    handleUdp(app, dst, std::move(payload));  // a refusal is counted there
  }
  // The hooks' count of what they handed over or dropped.
  void countHandOver(bool dropped) { ++(dropped ? stats_.handOverDrops : stats_.handedOver); }
  void otherPacketFromWorker(const uint8_t* packet, size_t len) {
    if (!handleOtherPacket(packet, len)) ++stats_.ipNotCarried;
  }
  const config::ClientConfig& config() const { return cfg_; }
  event::Loop& loop() { return loop_; }

  // For TcpSession.
  uint64_t nextFlowId() { return takeId(nextId_); }
  // The next id of a counter that starts at hooks.idFirst.
  uint64_t takeId(uint64_t& counter) const {
    if (counter == 0) counter = hooks_.idFirst;
    uint64_t id = counter;
    counter += hooks_.idStride;
    return id;
  }
  void touch(TcpSession& s);
  // Builds the outbound stack for `target`; null while the server address
  // is unknown (the session is then told later through dialReady).
  // A TCP flow's outbound. With connection reuse on (v1, pool.reuse) it is
  // chunked, runs over an idle pooled connection when `allowPool` and one
  // is there (*pooled says so), and goes back to the pool when it ends
  // cleanly.
  // With route.dial_by_name and a `name`, the server is asked for the
  // name; while the server's address for it is not known (DialledIps), the
  // flow takes its own VLESS connection with want_ip rather than the mux,
  // and *named gets that stream (to read the answer on connect).
  stream::StreamPtr makeOutbound(const netstack::FlowKey& key, bool want_ip,
                                 bool allowPool = true, bool* pooled = nullptr,
                                 std::string_view name = {},
                                 stream::VlessClientStream** named = nullptr);
  // The server answered that it dialled `ip` for `name` (want_ip).
  void noteDialled(const std::string& name, const codec::Address& ip);
  // Null unless connection reuse is on.
  const ConnectionPool* pool() const { return pool_.get(); }
  // Null unless the mux is on (v1 and mux.enabled).
  const MuxPool* mux() const { return mux_.get(); }
  // Null unless CmdIP is on (v1 and ip.enabled).
  const IpTunnel* ipTunnel() const { return ipTunnel_.get(); }
  const stream::BufferBudget& bufferBudget() const { return budget_; }
  bool serverAddressKnown() const { return !serverAddrs_.empty(); }
  // A connection to the server just worked (TCP+TLS, or a flow's answer):
  // UDP sockets pausing after failures may dial again at once.
  void noteServerReached() { serverReachedMs_ = loop_.now(); }
  uint64_t serverReachedMs() const { return serverReachedMs_; }
  void waitForServerAddress(const netstack::FlowKey& key);
  void onDialFailed();
  void onSessionClosed(TcpSession& s);  // removes it and defers its delete

  // For UdpSession / UdpChannel.
  uint64_t nextUdpId() { return takeId(nextUdpId_); }
  void touchUdp(UdpSession& s);
  // The outbound of one UDP channel to `target` (mode from udp.mode; a
  // udp_session id makes it a separated channel). Null while the server
  // address is unknown.
  stream::StreamPtr makeUdpOutbound(const netstack::UdpEndpoint& target,
                                    std::optional<uint64_t> udpSession);
  void onUdpSessionClosed(UdpSession& s);
  // The session became assured (the app sent again after a reply).
  void onUdpAssured(UdpSession& s);
  // A session's channel was closed at udp.max_channels.
  void countUdpChannelEvicted();
  void countUdp(uint64_t upPackets, uint64_t upBytes, uint64_t downPackets, uint64_t downBytes) {
    stats_.udpDatagramsUp += upPackets;
    stats_.udpBytesUp += upBytes;
    stats_.udpDatagramsDown += downPackets;
    stats_.udpBytesDown += downBytes;
  }
  void countUdpDrops(uint64_t n) { stats_.udpDrops += n; }
  void countUdpQueueOverflow() { ++stats_.udpQueueOverflow; }
  void countUdpBackoffDrop() { ++stats_.udpBackoffDrops; }
  void countDnsUnmatched(uint64_t n = 1) { stats_.dnsUnmatched += n; }
  // Routing ([[route.rules]]): the decision for a destination; proxy when
  // there are no rules. `name` is the flow's name when known (sniffed);
  // else the name the hijacked DNS answered the address for, if any, is
  // used and copied to *known.
  route::Decision routeFor(const netstack::IpAddress& ip, uint16_t port, route::Network network,
                           std::string_view name = {}, std::string* known = nullptr) const;
  // Whether learning the flow's name could change decision `d` (a rule
  // naming domains comes before the one that decided): worth sniffing.
  bool nameCouldMatter(const route::Decision& d) const {
    return rules_ != nullptr && rules_->firstDomainRule() < d.rule;
  }
  void countRouted(route::Action a, bool tcp) {
    if (a == route::Action::kDirect) ++(tcp ? stats_.flowsDirect : stats_.udpDirect);
    if (a == route::Action::kBlock) ++(tcp ? stats_.flowsBlocked : stats_.udpBlocked);
  }
  const DialledIps* dialledIps() const { return dialledIps_.get(); }
  void countSniffed(bool found) { ++(found ? stats_.namesSniffed : stats_.sniffMisses); }
  // Null unless rules name domains (or dial_by_name is on) and dns.hijack is on.
  DnsNames* dnsNames() { return dnsNames_.get(); }
  // Addresses whose DNS name is remembered for domain rules (~200 bytes
  // each: about 0.8 MiB at most; client/dns_names.h).
  static constexpr size_t kDnsNamesCapacity = 4096;
  // A plain TCP connection to the flow's destination itself, leaving by the
  // real interface (server.fwmark, the embedder's protect()).
  stream::StreamPtr makeDirect(const netstack::FlowKey& key);
  // An unconnected UDP socket for a session's direct datagrams, marked and
  // protected the same way; null (and a WARN) when it cannot be made.
  std::unique_ptr<event::UdpSocket> makeDirectUdp();
  // A new VLESS connection for `req` (version and user filled in). Null
  // while the server address is unknown.
  std::unique_ptr<stream::VlessClientStream> makeStream(codec::Request req);

  void countBytes(uint64_t up, uint64_t down) {
    stats_.bytesUp += up;
    stats_.bytesDown += down;
  }

 private:
  Client(event::Loop& loop, const config::ClientConfig& cfg, ClientHooks hooks);

  // NetStack::Callbacks
  void onOutput(const netstack::PacketView& packet) override;
  void onTcpSyn(const netstack::FlowKey& key) override;
  void onTcpAccepted(std::unique_ptr<netstack::TcpFlow> flow) override;
  void onTimerInterval(uint32_t intervalMs) override;
  bool onUdp(const netstack::UdpEndpoint& app, const netstack::UdpEndpoint& dst,
             BufferChain&& payload) override;
  // Raw packets (other protocols, ip.passthrough) to the CmdIP tunnel.
  bool onOtherPacket(const uint8_t* packet, size_t len) override;

  // IpTunnelHost
  std::unique_ptr<stream::VlessClientStream> openIpStream() override;
  void deliverIpPacket(const uint8_t* packet, size_t len) override;
  void onIpServerReached() override { noteServerReached(); }
  void onIpDialFailed() override { onDialFailed(); }
  uint64_t ipServerReachedMs() const override { return serverReachedMs_; }

  bool handleUdp(const netstack::UdpEndpoint& app, const netstack::UdpEndpoint& dst,
                 BufferChain&& payload);
  bool handleOtherPacket(const uint8_t* packet, size_t len);
  bool answerFromCache(const netstack::UdpEndpoint& app, const netstack::UdpEndpoint& dst,
                       const BufferChain& payload);
  uint64_t newUdpSessionId();

  bool isServerItself(const netstack::FlowKey& key) const;
  void resolve();
  void onResolved(Result<std::vector<event::SocketAddress>> r);
  void evictOne();
  // Evictions are logged summed up, at most once per kUdpEvictionLogMs.
  void writeUdpEvictions();

  event::Loop& loop_;
  config::ClientConfig cfg_;
  ClientHooks hooks_;
  // Every server connection (TcpStream) open now.
  std::shared_ptr<stream::TcpStreamSet> outbound_ = std::make_shared<stream::TcpStreamSet>();
  // Before everything that owns streams: their sockets charge it.
  stream::BufferBudget budget_;
  std::unique_ptr<netstack::NetStack> stack_;
  event::Timer stackTimer_;
  std::shared_ptr<tls::TlsContext> tls_;
  event::Resolver resolver_;
  // With marked sockets (auto_route): the server's name is looked up
  // outside the tunnel (client/server_name_resolver.h).
  std::unique_ptr<ServerNameResolver> markedResolver_;
  std::vector<event::SocketAddress> serverAddrs_;  // resolved, first one dialled
  std::optional<event::SocketAddress> lastFailed_;
  std::vector<netstack::FlowKey> waiting_;         // sessions waiting for the address
  PacketSink* sink_ = nullptr;
  std::unordered_map<netstack::FlowKey, std::unique_ptr<TcpSession>, FlowKeyHash> sessions_;
  std::list<TcpSession*> lru_;  // front: most recently active
  std::unordered_map<netstack::UdpEndpoint, std::unique_ptr<UdpSession>,
                     netstack::UdpEndpointHash>
      udpSessions_;
  // Eviction takes an unassured session while there is any.
  TieredLru<UdpSession> udpLru_;
  static constexpr uint64_t kUdpEvictionLogMs = 10'000;
  uint64_t udpEvictedUnlogged_ = 0;
  uint64_t udpChannelsEvictedUnlogged_ = 0;
  event::LogSummary udpEvictionLog_;
  std::shared_ptr<DnsCache> dnsCache_;
  std::unique_ptr<ConnectionPool> pool_;
  std::unique_ptr<MuxPool> mux_;
  std::unique_ptr<IpTunnel> ipTunnel_;
  std::shared_ptr<const route::RuleSet> rules_;  // null: everything to the server
  std::shared_ptr<const route::GeoIp> geoip_;    // when a rule lists geoip
  std::shared_ptr<DnsNames> dnsNames_;
  std::shared_ptr<DialledIps> dialledIps_;  // dial_by_name with geoip rules (v1)
  std::optional<netstack::UdpEndpoint> resolverEp_;
  std::optional<netstack::UdpEndpoint> directResolverEp_;
  uint64_t udpIdKey_ = 0;  // random per run: udp_session ids derive from it
  uint64_t udpIdSeq_ = 0;
  uint64_t nextUdpId_ = 0;  // 0: not started (takeId)
  ClientStats stats_;
  uint64_t nextId_ = 0;  // 0: not started (takeId)
  uint64_t serverReachedMs_ = 0;
  bool stopped_ = false;
  bool resolvePending_ = false;

  friend class TcpSession;
  friend class UdpSession;
};

}  // namespace vt::client
