// The status table (`vless-tun status`): what a person reads at a glance.
// The same counters as the stats JSON (stats_json.cc), fewer of them.
#include <algorithm>
#include <string>
#include <vector>

#include "client/tcp_session.h"
#include "client/udp_session.h"
#include "core/text_table.h"
#include "engine/stats_json.h"

namespace vt::engine {

namespace {

struct Row {
  uint64_t id, up, down, age, idle;
  std::string proto, app, dst;
};

std::string plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

std::string buildStatusTable(const StatsInput& in, size_t maxRows) {
  std::string out = "vless-tun " + in.state;
  if (in.clients.empty() || in.cfg == nullptr) return out + "\n";
  const config::ClientConfig& cfg = *in.cfg;
  out += " for " + humanDuration(in.uptimeMs) + ": tun " + (in.tunName.empty() ? "-" : in.tunName) +
         " (" + in.mode + (in.clients.size() > 1 ? ", " + plural(in.clients.size(), "worker", "workers") : "") +
         "), server " + cfg.server.address.toString() + " (v" + std::to_string(cfg.server.version) +
         (cfg.server.tls ? ", tls" : ", plain") + (cfg.mux.enabled ? ", mux" : "") + ")\n";

  client::ClientStats sum;
  size_t tcpLive = 0, udpLive = 0;
  std::vector<Row> rows;
  for (const client::Client* c : in.clients) {
    const client::ClientStats& s = c->stats();
    sum.flowsOpened += s.flowsOpened;
    sum.connectFailed += s.connectFailed;
    sum.bytesUp += s.bytesUp;
    sum.bytesDown += s.bytesDown;
    sum.udpSessionsOpened += s.udpSessionsOpened;
    sum.udpBytesUp += s.udpBytesUp;
    sum.udpBytesDown += s.udpBytesDown;
    sum.udpDrops += s.udpDrops + s.handOverDrops;
    sum.flowsDirect += s.flowsDirect;
    sum.flowsBlocked += s.flowsBlocked;
    sum.udpDirect += s.udpDirect;
    sum.udpBlocked += s.udpBlocked;
    tcpLive += c->sessionCount();
    udpLive += c->udpSessionCount();
    c->forEachSession([&](const client::TcpSession& s) {
      Row r{s.id(), s.upBytes(), s.downBytes(), in.nowMs - std::min(in.nowMs, s.startMs()),
            in.nowMs - std::min(in.nowMs, s.lastActivityMs()), s.direct() ? "tcp direct" : "tcp",
            netstack::UdpEndpoint{s.key().src, s.key().srcPort}.toString(),
            netstack::UdpEndpoint{s.key().dst, s.key().dstPort}.toString()};
      if (!s.name().empty()) r.dst = s.name() + " (" + r.dst + ")";
      rows.push_back(std::move(r));
    });
    c->forEachUdpSession([&](const client::UdpSession& s) {
      rows.push_back(Row{s.id(), s.upBytes(), s.downBytes(), in.nowMs - std::min(in.nowMs, s.startMs()),
                         in.nowMs - std::min(in.nowMs, s.lastActivityMs()), "udp", s.app().toString(),
                         plural(s.channelCount(), "peer", "peers")});
    });
  }
  out += "tcp: " + plural(tcpLive, "flow", "flows") + " (" + std::to_string(sum.flowsOpened) +
         " opened, " + std::to_string(sum.connectFailed) + " failed), up " + humanBytes(sum.bytesUp) +
         ", down " + humanBytes(sum.bytesDown) + "\n";
  out += "udp: " + plural(udpLive, "session", "sessions") + " (" +
         std::to_string(sum.udpSessionsOpened) + " opened, " + std::to_string(sum.udpDrops) +
         " datagrams dropped), up " + humanBytes(sum.udpBytesUp) + ", down " +
         humanBytes(sum.udpBytesDown) + "\n";
  if (cfg.route.rules.count > 0) {
    out += "routing: " + plural(cfg.route.rules.count, "rule", "rules") + ", tcp " +
           std::to_string(sum.flowsDirect) + " direct " + std::to_string(sum.flowsBlocked) +
           " blocked, udp " + std::to_string(sum.udpDirect) + " direct " +
           std::to_string(sum.udpBlocked) + " blocked (datagrams)\n";
  }
  if (rows.empty()) return out;
  // The busiest first: what a person looks for.
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.up + a.down != b.up + b.down ? a.up + a.down > b.up + b.down : a.id < b.id;
  });
  TextTable t({"ID", "PROTO", "APP", "DESTINATION", "UP", "DOWN", "AGE", "IDLE"});
  for (size_t i = 0; i < rows.size() && i < maxRows; ++i) {
    const Row& r = rows[i];
    t.add({std::to_string(r.id), r.proto, r.app, r.dst, humanBytes(r.up), humanBytes(r.down),
           humanDuration(r.age), humanDuration(r.idle)});
  }
  out += "\n" + t.render();
  if (rows.size() > maxRows) {
    out += "... and " + std::to_string(rows.size() - maxRows) +
           " more (busiest first; `status --json` lists up to " + std::to_string(kMaxListedFlows) +
           " of each kind)\n";
  }
  return out;
}

}  // namespace vt::engine
