#include "server/ip_exit.h"

#include <errno.h>

#include <cinttypes>
#include <cstring>

#include "core/log.h"
#include "ip_masquerade.h"
#include "tun_device.h"

namespace vt::server {
namespace {

// Packets read per readiness callback: the loop's other work runs between.
constexpr int kReadBurst = 64;

IpLeaseTable::Options leaseOptions(const config::ServerIpConfig& c) {
  IpLeaseTable::Options o;
  o.pool4 = c.pool4;
  o.pool6 = c.pool6;
  o.max_sessions = c.max_sessions;
  o.max_sessions_per_user = c.max_sessions_per_user;
  o.grace_ms = c.lease_grace_ms;
  return o;
}

}  // namespace

IpExit::IpExit(event::Loop& loop, const config::ServerIpConfig& cfg)
    : loop_(loop), cfg_(cfg), leases_(leaseOptions(cfg)), scratch_(65536), rbuf_(65536) {}

IpExit::~IpExit() { stop(); }

Status IpExit::start() {
  platform::TunConfig tc;
  tc.name = cfg_.tun_name;
  tc.mtu = cfg_.mtu;
  tc.ipv4 = IpLeaseTable::text(false, leases_.gateway(false));
  tc.ipv4Prefix = cfg_.pool4.bits;
  if (cfg_.pool6) {
    tc.ipv6 = IpLeaseTable::text(true, leases_.gateway(true));
    tc.ipv6Prefix = cfg_.pool6->bits;
  }
  auto tun = platform::TunDevice::create(tc);
  if (!tun.ok()) {
    return Error(tun.error().code, "ip: TUN " + cfg_.tun_name + ": " + tun.error().message);
  }
  tun_ = std::move(tun).value();
  tun_name_ = tun_->name().empty() ? cfg_.tun_name : tun_->name();
  if (cfg_.masquerade) {
    platform::MasqueradeOptions mo;
    mo.tunName = tun_name_;
    mo.pool4 = cfg_.pool4.toString();
    if (cfg_.pool6) mo.pool6 = cfg_.pool6->toString();
    mo.stateFile = cfg_.state_file;
    masq_ = std::make_unique<platform::IpMasquerade>(mo);
    if (Status st = masq_->apply(); !st.ok()) {
      masq_.reset();
      tun_.reset();
      return st;
    }
  }
  watcher_ = std::make_unique<event::FdWatcher>(loop_, tun_->fd());
  if (!watcher_->ok()) {
    stop();
    return Error(Errc::kIo, "ip: cannot watch the TUN fd (libuv " +
                                std::to_string(watcher_ ? watcher_->initStatus() : 0) + ")");
  }
  watcher_->onReadable([this] { onReadable(); });
  const uint64_t hosts4 = (uint64_t{1} << (32 - cfg_.pool4.bits)) - 3;
  if (hosts4 < cfg_.max_sessions) {
    VT_WARN("ip: pool4 %s has %llu leasable addresses, fewer than ip.max_sessions %u: sessions "
            "past that get no IPv4 address (counted as no_address)",
            cfg_.pool4.toString().c_str(), static_cast<unsigned long long>(hosts4),
            cfg_.max_sessions);
  }
  VT_INFO("ip: TUN %s up, gateway %s/%u%s%s, pools %s%s%s, masquerade %s", tun_name_.c_str(),
          tc.ipv4.c_str(), cfg_.pool4.bits, tc.ipv6.empty() ? "" : " ", tc.ipv6.c_str(),
          cfg_.pool4.toString().c_str(), cfg_.pool6 ? " " : "",
          cfg_.pool6 ? cfg_.pool6->toString().c_str() : "", cfg_.masquerade ? "on" : "off");
  return Status::okStatus();
}

void IpExit::stop() {
  watcher_.reset();
  tun_.reset();
  if (masq_) {
    if (Status st = masq_->restore(); !st.ok()) {
      VT_ERROR("ip: removing masquerade: %s (state kept in %s for the next start)",
               st.error().message.c_str(), masq_->stateFile().c_str());
    } else {
      VT_INFO("ip: masquerade removed (table inet %s, forwarding sysctls restored)",
              masq_->tableName().c_str());
    }
    masq_.reset();
  }
}

Result<uint64_t> IpExit::attach(IpSession* s, const std::string& user) {
  if (!tun_) return Error(Errc::kClosed, "ip exit stopped");
  auto id = leases_.open(user);
  if (!id.ok()) {
    ++stats_.refused;
    return id.error();
  }
  sessions_[id.value()] = s;
  ++stats_.sessions;
  return id.value();
}

void IpExit::detach(uint64_t id, const IpCounters& c) {
  (void)c;  // counted into the totals as it happened
  sessions_.erase(id);
  leases_.close(id, loop_.now());
}

bool IpExit::isGateway(bool v6, const uint8_t* a) const {
  if (!leases_.hasPool(v6)) return false;
  const codec::IpAddressBytes& g = leases_.gateway(v6);
  for (size_t i = 0; i < (v6 ? 16u : 4u); ++i) {
    if (g[i] != a[i]) return false;
  }
  return true;
}

ssize_t IpExit::send(const uint8_t* p, size_t n) {
  if (!tun_) return -EBADF;
  iovec iov{const_cast<uint8_t*>(p), n};
  return tun_->writePacket(&iov, 1);
}

void IpExit::onReadable() {
  for (int i = 0; i < kReadBurst && tun_; ++i) {
    ssize_t n = tun_->readPacket(rbuf_.data(), rbuf_.size());
    if (n == -EAGAIN || n == -EINTR) return;
    if (n < 0) {
      VT_WARN("ip: TUN %s read: %s", tun_name_.c_str(), std::strerror(static_cast<int>(-n)));
      return;
    }
    codec::RawIpPacket info;
    if (codec::parseRawIpPacket(rbuf_.data(), static_cast<size_t>(n), info) !=
        codec::IpPacketError::kNone) {
      countDrop(IpDrop::kBadFromTun);
      continue;
    }
    const uint64_t id = leases_.owner(info.v6(), info.dst);
    auto it = id == 0 ? sessions_.end() : sessions_.find(id);
    if (it == sessions_.end()) {
      // Router solicitations, replies for a session that ended (its address
      // resting), scans of the pool: nobody's.
      countDrop(IpDrop::kUnknownDst);
      continue;
    }
    it->second->deliver(rbuf_.data(), info);
  }
}

std::string IpExit::summary() const {
  const IpCounters& t = stats_.totals;
  return std::to_string(stats_.sessions) + " sessions (" + std::to_string(stats_.refused) +
         " refused at caps), up " + std::to_string(t.pkts_up) + " packets " +
         std::to_string(t.bytes_up) + " B, down " + std::to_string(t.pkts_down) + " packets " +
         std::to_string(t.bytes_down) + " B, " + std::to_string(leases_.stats().leases) +
         " leases, dropped " + std::to_string(t.dropped()) + " (" + t.dropsText() + ")";
}

}  // namespace vt::server
