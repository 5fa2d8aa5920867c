#include "client/tun_pump.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "netstack/udp_packet.h"

namespace vt::client {
namespace {

// struct virtio_net_hdr's flags and gso_type values we read or write.
constexpr uint8_t kNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint8_t kGsoNone = 0, kGsoTcp4 = 1, kGsoTcp6 = 4, kGsoEcn = 0x80;

}  // namespace

TunPump::TunPump(event::Loop& loop, int fd, netstack::NetStack& stack, size_t mtu,
                 bool vnetHeader)
    : loop_(loop),
      fd_(fd),
      stack_(stack),
      mtu_(mtu < 576 ? 576 : mtu),
      vnet_(vnetHeader),
      readCap_(vnetHeader ? kMaxOffloadPacket : mtu_),
      watcher_(loop, fd) {}

TunPump::~TunPump() {
  *self_ = nullptr;  // a posted flush finds nobody; an unwritten run goes with us
  watcher_.stop();
}

Status TunPump::start() {
  if (!watcher_.ok()) {
    return Error(Errc::kIo, "tun: cannot poll fd " + std::to_string(fd_) + ": error " +
                                std::to_string(watcher_.initStatus()));
  }
  watcher_.onReadable([this] { onReadable(); });
  return Status();
}

void TunPump::stop() {
  flushRun();
  watcher_.stop();
}

void TunPump::onReadable() {
  netstack::NetStack::InputBatch batch(stack_);  // one ACK per flow for what this reads
  for (int i = 0; i < kBatch; ++i) {
    // One MTU-sized buffer is read into and kept while the packets are
    // small: a packet up to half of it (an ACK, a short request) is copied
    // into a pbuf of its own size, so a queued small packet never holds a
    // whole MTU (64 KiB with a large TUN MTU) and reads do not allocate.
    if (!spare_.valid()) spare_ = stack_.allocInput(readCap_);
    uint8_t scratch[1];  // lwIP out of memory: drain the packet anyway
    uint8_t* dst = spare_.valid() ? spare_.data() : scratch;
    size_t cap = spare_.valid() ? readCap_ : sizeof(scratch);
    uint8_t hdr[kVnetHeaderBytes];
    iovec iov[2] = {{hdr, sizeof hdr}, {dst, cap}};
    ssize_t n = vnet_ ? ::readv(fd_, iov, 2) : ::read(fd_, dst, cap);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      ++stats_.readErrors;
      std::string why = std::string("tun: read failed: ") + std::strerror(errno);
      VT_ERROR("%s", why.c_str());
      watcher_.stop();  // level-triggered: would fire again at once
      if (auto cb = std::move(onFatal_)) cb(why);
      return;
    }
    if (n == 0) return;
    if (!spare_.valid()) {
      ++stats_.readDropped;
      continue;
    }
    if (vnet_) {
      if (static_cast<size_t>(n) <= kVnetHeaderBytes) {
        ++stats_.offloadDropped;
        continue;
      }
      n -= static_cast<ssize_t>(kVnetHeaderBytes);
      if (!takeVnetHeader(hdr, dst, static_cast<size_t>(n))) continue;
    }
    ++stats_.packetsIn;
    stats_.bytesIn += static_cast<uint64_t>(n);
    const size_t len = static_cast<size_t>(n);
    if (len <= readCap_ / 2) {
      stack_.input(spare_.data(), len);  // a right-sized copy
    } else {
      stack_.input(std::move(spare_), len);
    }
  }
  // More may be queued: the level-triggered watcher calls again next pass.
}

bool TunPump::takeVnetHeader(const uint8_t* hdr, uint8_t* packet, size_t len) {
  // struct virtio_net_hdr in the host's byte order (no TUNSETVNETLE/BE):
  // flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
  auto u16 = [hdr](size_t at) {
    uint16_t v;
    std::memcpy(&v, hdr + at, sizeof v);
    return v;
  };
  const uint8_t gso = hdr[1] & static_cast<uint8_t>(~kGsoEcn);
  if (gso != kGsoNone && gso != kGsoTcp4 && gso != kGsoTcp6) {
    ++stats_.offloadDropped;  // UDP GSO and the like: never offered (TUNSETOFFLOAD)
    return false;
  }
  if (gso != kGsoNone) ++stats_.gsoIn;
  if ((hdr[0] & kNeedsCsum) == 0) return true;
  // The checksum at csum_start + csum_offset holds only the pseudo-header's
  // sum. TCP and UDP go into the netstack, which checks neither, and are
  // relayed as streams and datagrams: nothing to do. Anything else may
  // leave as a raw packet (CmdIP), so its checksum is completed here.
  const uint8_t version = len > 0 ? static_cast<uint8_t>(packet[0] >> 4) : 0;
  uint8_t proto = 0;
  if (version == 4 && len >= 20) proto = packet[9];
  if (version == 6 && len >= 40) proto = packet[6];
  if (proto == 6 || proto == 17) return true;
  if (gso != kGsoNone || !completeChecksum(packet, len, u16(6), u16(8))) {
    ++stats_.offloadDropped;
    return false;
  }
  return true;
}

void TunPump::vnetHeaderFor(const netstack::PacketView& packet, uint8_t* out) {
  std::memset(out, 0, kVnetHeaderBytes);
  if (packet.gsoSize == 0) return;
  constexpr uint16_t kTcpChecksumOffset = 16;
  auto put16 = [out](size_t at, uint16_t v) { std::memcpy(out + at, &v, sizeof v); };
  out[0] = kNeedsCsum;
  out[1] = packet.v6 ? kGsoTcp6 : kGsoTcp4;
  put16(2, packet.headerLen);  // hdr_len
  put16(4, packet.gsoSize);    // gso_size
  put16(6, packet.l4Offset);   // csum_start
  put16(8, kTcpChecksumOffset);
}

bool TunPump::completeChecksum(uint8_t* packet, size_t len, size_t start, size_t offset) {
  const size_t at = start + offset;
  if (start >= len || at + 2 > len) return false;
  netstack::InetChecksum sum;
  sum.add(packet + start, len - start);  // the field's partial sum included
  const uint16_t v = sum.finish();
  packet[at] = static_cast<uint8_t>(v >> 8);
  packet[at + 1] = static_cast<uint8_t>(v & 0xff);
  return true;
}

bool TunPump::isControlPacket(const netstack::PacketView& packet) {
  // Headers only: anything longer carries payload (or is no TCP we send).
  if (packet.size < 40 || packet.size > kMaxControlPacketBytes) return false;
  uint8_t b[kMaxControlPacketBytes];
  size_t n = 0;
  for (int i = 0; i < packet.iovCount && n < packet.size; ++i) {
    size_t take = packet.iov[i].iov_len;
    if (take > packet.size - n) take = packet.size - n;
    std::memcpy(b + n, packet.iov[i].iov_base, take);
    n += take;
  }
  if (n != packet.size) return false;
  size_t ipHeader = 0;
  size_t ipTotal = 0;  // the IP header's own idea of the packet's length
  if ((b[0] >> 4) == 4) {
    ipHeader = static_cast<size_t>(b[0] & 0x0f) * 4;
    ipTotal = (static_cast<size_t>(b[2]) << 8) | b[3];
    bool fragment = ((b[6] & 0x3f) | b[7]) != 0;  // MF or an offset
    if (ipHeader < 20 || b[9] != 6 || fragment) return false;
  } else if ((b[0] >> 4) == 6) {
    ipHeader = 40;
    ipTotal = 40 + ((static_cast<size_t>(b[4]) << 8) | b[5]);
    if (b[6] != 6) return false;  // TCP right after the fixed header (as lwIP sends it)
  } else {
    return false;
  }
  if (ipTotal > n || ipHeader + 20 > ipTotal) return false;
  size_t tcpHeader = static_cast<size_t>(b[ipHeader + 12] >> 4) * 4;
  if (tcpHeader < 20 || ipHeader + tcpHeader != ipTotal) return false;  // payload, or malformed
  constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04;
  return (b[ipHeader + 13] & (kFin | kSyn | kRst)) != 0;
}

void TunPump::writePacket(const netstack::PacketView& packet) {
  if (vnet_) {
    WriteCoalescer::Piece d;
    if (WriteCoalescer::parse(packet, d) && (d.tcp || udpRunsOk_)) {
      if (!run_.joins(d)) flushRun();
      run_.add(packet, d);
      if (!runPosted_) {
        runPosted_ = true;
        loop_.post([token = self_] {
          if (*token == nullptr) return;
          (*token)->runPosted_ = false;
          (*token)->flushRun();
        });
      }
      return;
    }
    flushRun();  // anything else keeps its place behind the run
  }
  writeOne(packet, nullptr);
}

void TunPump::flushRun() {
  if (run_.empty()) return;
  const size_t packets = run_.count();
  const bool tcp = run_.tcp();
  uint8_t vnet[kVnetHeaderBytes];
  const std::vector<uint8_t>& bytes = run_.build(vnet);
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  const int err = writeOne(netstack::PacketView{&iov, 1, bytes.size()}, vnet);
  if (err == EINVAL && packets > 1 && !tcp) {
    // Linux before 6.2 knows no UDP GSO from a TUN: one by one from now on.
    udpRunsOk_ = false;
    VT_INFO("tun: the kernel refuses UDP GSO writes (before Linux 6.2): datagrams toward the "
            "app go one by one");
    run_.forEachPacket([this](const uint8_t* p, size_t len) {
      iovec one{const_cast<uint8_t*>(p), len};
      writeOne(netstack::PacketView{&one, 1, len}, nullptr);
    });
  } else if (err == 0 && packets > 1) {
    (tcp ? stats_.tcpGathered : stats_.udpGathered) += packets;
  }
  run_.clear();
}

int TunPump::writeOne(const netstack::PacketView& packet, const uint8_t* vnetHeader) {
  if (!backlog_.empty()) {
    queue(packet, vnetHeader);  // behind what waits: order holds
    return 0;
  }
  // With the vnet header: the one given (a run's GSO header), a zeroed one (no
  // GSO, checksums complete), or the GSO one NetStack asked for, ahead of
  // the packet.
  uint8_t header[kVnetHeaderBytes];
  iovec withHeader[kMaxWriteIov + 1];
  const iovec* iov = packet.iov;
  int iovCount = packet.iovCount;
  if (vnet_) {
    if (packet.iovCount > kMaxWriteIov) {
      queue(packet, vnetHeader);  // flattened there (never seen: lwIP's chains are short)
      return 0;
    }
    if (vnetHeader != nullptr) {
      std::memcpy(header, vnetHeader, sizeof header);
    } else {
      vnetHeaderFor(packet, header);
    }
    withHeader[0] = {header, sizeof header};
    std::memcpy(withHeader + 1, packet.iov, sizeof(iovec) * static_cast<size_t>(packet.iovCount));
    iov = withHeader;
    iovCount = packet.iovCount + 1;
  }
  for (;;) {
    ssize_t n = ::writev(fd_, iov, iovCount);
    if (n >= 0) {
      ++stats_.packetsOut;
      stats_.bytesOut += static_cast<uint64_t>(n) - (vnet_ ? kVnetHeaderBytes : 0);
      if (vnet_ && header[1] != 0) ++stats_.gsoOut;  // gso_type
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      queue(packet, vnetHeader);
      return 0;
    }
    const int err = errno;
    if (err == EINVAL && vnet_ && header[1] == WriteCoalescer::kGsoUdpL4) return err;  // the caller cuts it
    ++stats_.writeDropped;
    if (isControlPacket(packet)) ++stats_.controlDropped;
    if (!errorLogged_) {
      errorLogged_ = true;
      VT_ERROR("tun: write failed: %s", std::strerror(err));
    }
    return err;
  }
}

void TunPump::queue(const netstack::PacketView& packet, const uint8_t* vnetHeader) {
  const bool control = isControlPacket(packet);
  if (control) {
    if (controlPackets_ >= kMaxControlPackets) {
      ++stats_.writeDropped;
      ++stats_.controlDropped;
      return;
    }
  } else if (backlogBytes_ + packet.size > kMaxBacklogBytes ||
             backlogPackets_ >= kMaxBacklogPackets) {
    ++stats_.writeDropped;
    return;
  }
  Queued q;
  q.control = control;
  if (vnet_ && vnetHeader != nullptr) {
    std::memcpy(q.vnet.data(), vnetHeader, kVnetHeaderBytes);
  } else if (vnet_) {
    vnetHeaderFor(packet, q.vnet.data());
  }
  q.bytes.resize(packet.size);
  size_t off = 0;
  for (int i = 0; i < packet.iovCount; ++i) {
    std::memcpy(q.bytes.data() + off, packet.iov[i].iov_base, packet.iov[i].iov_len);
    off += packet.iov[i].iov_len;
  }
  if (control) {
    ++controlPackets_;
    ++stats_.controlQueued;
  } else {
    ++backlogPackets_;
    backlogBytes_ += q.bytes.size();
  }
  backlog_.push_back(std::move(q));
  ++stats_.writeQueued;
  if (backlog_.size() == 1) watcher_.onWritable([this] { flush(); });
}

void TunPump::flush() {
  while (!backlog_.empty()) {
    Queued& q = backlog_.front();
    iovec iov[2] = {{q.vnet.data(), q.vnet.size()}, {q.bytes.data(), q.bytes.size()}};
    ssize_t n = vnet_ ? ::writev(fd_, iov, 2) : ::write(fd_, q.bytes.data(), q.bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // still full
    if (n >= 0) {
      ++stats_.packetsOut;
      stats_.bytesOut += q.bytes.size();
      if (q.vnet[1] != 0) ++stats_.gsoOut;  // gso_type
    } else {
      // A UDP GSO run refused after waiting here (Linux before 6.2, when the
      // first one met a full queue) is lost; later runs go one by one.
      if (errno == EINVAL && q.vnet[1] == WriteCoalescer::kGsoUdpL4) udpRunsOk_ = false;
      ++stats_.writeDropped;
      if (q.control) ++stats_.controlDropped;
    }
    if (q.control) {
      --controlPackets_;
    } else {
      --backlogPackets_;
      backlogBytes_ -= q.bytes.size();
    }
    backlog_.pop_front();
  }
  watcher_.onWritable(nullptr);
}

}  // namespace vt::client
