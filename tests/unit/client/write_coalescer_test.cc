// WriteCoalescer and TunPump's UDP runs: the datagrams of one loop pass
// toward the app, per flow, as UDP GSO packets (virtio_net_hdr UDP_L4).
// The bytes are pinned here; the kernel's side (a real TUN taking them)
// runs in every integration bed with tun.offload (it_udp_*).
#include "client/write_coalescer.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "client/tun_pump.h"
#include "event/loop.h"
#include "netstack/net_stack.h"
#include "netstack/udp_packet.h"
#include "unit/client/null_stack_owner.h"
#include "unit/netstack/packet_builder.h"

namespace vt::client {
namespace {

std::vector<uint8_t> udp(bool v6, uint16_t srcPort, size_t n, uint8_t fill) {
  std::vector<uint8_t> payload(n);
  for (size_t i = 0; i < n; ++i) payload[i] = static_cast<uint8_t>(fill + i);
  return test::buildUdp(v6 ? "2001:db8:1::2" : "198.18.1.2", v6 ? "2001:db8:2::1" : "198.18.2.1",
                        srcPort, 40000, payload);
}

netstack::PacketView view(const std::vector<uint8_t>& p, iovec& iov) {
  iov = {const_cast<uint8_t*>(p.data()), p.size()};
  return netstack::PacketView{&iov, 1, p.size()};
}

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint16_t host16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Adds `packets` to a fresh coalescer; false if one did not join.
bool gather(WriteCoalescer& c, const std::vector<std::vector<uint8_t>>& packets) {
  for (const auto& p : packets) {
    iovec iov;
    auto v = view(p, iov);
    WriteCoalescer::Piece d;
    if (!WriteCoalescer::parse(v, d) || !c.joins(d)) return false;
    c.add(v, d);
  }
  return true;
}

TEST(WriteCoalescer, RunOfOneFlowIsOneGsoPacket) {
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    std::vector<std::vector<uint8_t>> in;
    for (int i = 0; i < 5; ++i) in.push_back(udp(v6, 53, 1000, static_cast<uint8_t>(i)));
    in.push_back(udp(v6, 53, 300, 9));  // the last may be shorter
    WriteCoalescer c;
    ASSERT_TRUE(gather(c, in));
    EXPECT_EQ(c.count(), 6u);
    uint8_t vnet[10];
    const std::vector<uint8_t>& out = c.build(vnet);
    const size_t ip = v6 ? 40 : 20;
    ASSERT_EQ(out.size(), ip + 8 + 5 * 1000 + 300);
    // virtio_net_hdr: NEEDS_CSUM, UDP_L4, hdr_len, gso_size, csum_start, csum_offset.
    EXPECT_EQ(vnet[0], 1);
    EXPECT_EQ(vnet[1], 5);
    EXPECT_EQ(host16(vnet + 2), ip + 8);
    EXPECT_EQ(host16(vnet + 4), 1000);
    EXPECT_EQ(host16(vnet + 6), ip);
    EXPECT_EQ(host16(vnet + 8), 6);
    // Lengths cover the run; the UDP checksum field holds the
    // pseudo-header's sum, which the kernel completes per segment.
    const uint8_t* p = out.data();
    if (v6) {
      EXPECT_EQ(be16(p + 4), out.size() - 40);
    } else {
      EXPECT_EQ(be16(p + 2), out.size());
      netstack::InetChecksum h;
      h.add(p, 20);
      EXPECT_EQ(h.finish(), 0) << "IPv4 header checksum";
    }
    EXPECT_EQ(be16(p + ip + 4), out.size() - ip);
    netstack::InetChecksum pseudo;
    pseudo.add(p + (v6 ? 8 : 12), v6 ? 32 : 8);
    pseudo.addBe16(17);
    pseudo.addBe16(static_cast<uint16_t>(out.size() - ip));
    EXPECT_EQ(be16(p + ip + 6), static_cast<uint16_t>(~pseudo.finish()));
    // The payloads follow one another.
    size_t at = ip + 8;
    for (const auto& d : in) {
      ASSERT_EQ(std::memcmp(p + at, d.data() + ip + 8, d.size() - ip - 8), 0);
      at += d.size() - ip - 8;
    }
    // Cut back (a kernel without UDP GSO from a TUN): the very datagrams,
    // checksums verified by the parser.
    size_t i = 0;
    c.forEachPacket([&](const uint8_t* q, size_t n) {
      ASSERT_LT(i, in.size());
      test::ParsedPacket got, want;
      ASSERT_TRUE(test::parsePacket(q, n, got));
      ASSERT_TRUE(test::parsePacket(in[i], want));
      EXPECT_TRUE(got.checksumsOk) << i;
      EXPECT_EQ(got.payload, want.payload) << i;
      EXPECT_EQ(got.src, want.src);
      EXPECT_EQ(got.dst, want.dst);
      EXPECT_EQ(got.srcPort, 53);
      EXPECT_EQ(n, in[i].size());
      ++i;
    });
    EXPECT_EQ(i, in.size());
  }
}

TEST(WriteCoalescer, WhatEndsAUdpRun) {
  WriteCoalescer c;
  ASSERT_TRUE(gather(c, {udp(false, 53, 1000, 1), udp(false, 53, 1000, 2)}));
  auto joins = [&](const std::vector<uint8_t>& p) {
    iovec iov;
    auto v = view(p, iov);
    WriteCoalescer::Piece d;
    return WriteCoalescer::parse(v, d) && c.joins(d);
  };
  EXPECT_FALSE(joins(udp(false, 54, 1000, 3)));  // another flow
  EXPECT_FALSE(joins(udp(true, 53, 1000, 3)));   // another family
  EXPECT_FALSE(joins(udp(false, 53, 1001, 3)));  // longer than the first
  EXPECT_TRUE(joins(udp(false, 53, 1000, 3)));
  ASSERT_TRUE(gather(c, {udp(false, 53, 10, 3)}));
  EXPECT_FALSE(joins(udp(false, 53, 10, 4)));  // after a shorter one
  // At most 64 datagrams, and one IP packet's length.
  WriteCoalescer d;
  std::vector<std::vector<uint8_t>> many(WriteCoalescer::kMaxSegments, udp(false, 53, 100, 0));
  ASSERT_TRUE(gather(d, many));
  EXPECT_FALSE(gather(d, {udp(false, 53, 100, 0)}));
  WriteCoalescer e;
  std::vector<std::vector<uint8_t>> big(6, udp(false, 53, 12000, 0));
  EXPECT_FALSE(gather(e, big));  // the sixth would pass 65535 bytes
  EXPECT_EQ(e.count(), 5u);
  // Not UDP, no payload, IPv4 options or a fragment: never gathered.
  WriteCoalescer::Piece dg;
  iovec iov;
  auto empty = udp(false, 53, 0, 0);
  EXPECT_FALSE(WriteCoalescer::parse(view(empty, iov), dg));
  auto frag = test::fragmentPacket(udp(false, 53, 3000, 0), 1500, 7);
  EXPECT_FALSE(WriteCoalescer::parse(view(frag[0], iov), dg));
  test::TcpSegment s;
  s.src = "198.18.1.2";
  s.dst = "198.18.2.1";
  s.payload.assign(100, 1);
  auto tcp = test::buildTcp(s);
  EXPECT_FALSE(WriteCoalescer::parse(view(tcp, iov), dg));
  // A one-datagram run leaves as it came, with a zero header.
  WriteCoalescer one;
  auto single = udp(false, 53, 500, 1);
  ASSERT_TRUE(gather(one, {single}));
  uint8_t vnet[10];
  EXPECT_EQ(one.build(vnet), single);
  for (uint8_t b : vnet) EXPECT_EQ(b, 0);
}

std::vector<uint8_t> tcpSeg(bool v6, uint32_t seq, size_t n, uint8_t flags = test::kAck,
                            uint32_t ack = 7, uint16_t srcPort = 80) {
  test::TcpSegment s;
  s.src = v6 ? "2001:db8:1::2" : "198.18.1.2";
  s.dst = v6 ? "2001:db8:2::1" : "198.18.2.1";
  s.srcPort = srcPort;
  s.dstPort = 40000;
  s.seq = seq;
  s.ack = ack;
  s.flags = flags;
  s.payload.resize(n);
  for (size_t i = 0; i < n; ++i) s.payload[i] = static_cast<uint8_t>(seq + i);
  return test::buildTcp(s);
}

TEST(WriteCoalescer, TcpSegmentsInSequenceAreOneGsoPacket) {
  for (bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    std::vector<std::vector<uint8_t>> in;
    uint32_t seq = 1000;
    for (int i = 0; i < 4; ++i, seq += 1400) in.push_back(tcpSeg(v6, seq, 1400));
    in.push_back(tcpSeg(v6, seq, 600, test::kAck | test::kPsh));  // PSH ends it
    WriteCoalescer c;
    ASSERT_TRUE(gather(c, in));
    EXPECT_TRUE(c.tcp());
    uint8_t vnet[10];
    const std::vector<uint8_t>& out = c.build(vnet);
    const size_t ip = v6 ? 40 : 20;
    ASSERT_EQ(out.size(), ip + 20 + 4 * 1400 + 600);
    EXPECT_EQ(vnet[0], 1);
    EXPECT_EQ(vnet[1], v6 ? 4 : 1);
    EXPECT_EQ(host16(vnet + 2), ip + 20);
    EXPECT_EQ(host16(vnet + 4), 1400);
    EXPECT_EQ(host16(vnet + 6), ip);
    EXPECT_EQ(host16(vnet + 8), 16);
    const uint8_t* p = out.data();
    EXPECT_EQ(be16(p + (v6 ? 4 : 2)), out.size() - (v6 ? 40 : 0));
    EXPECT_EQ(p[ip + 13], test::kAck | test::kPsh);  // the kernel puts PSH on the last piece only
    netstack::InetChecksum pseudo;
    pseudo.add(p + (v6 ? 8 : 12), v6 ? 32 : 8);
    pseudo.addBe16(6);
    pseudo.addBe16(static_cast<uint16_t>(out.size() - ip));
    EXPECT_EQ(be16(p + ip + 16), static_cast<uint16_t>(~pseudo.finish()));
    // The payloads in sequence: the checksum completed over the whole
    // packet verifies, as the kernel's receive path would accept it.
    std::vector<uint8_t> whole = out;
    ASSERT_TRUE(TunPump::completeChecksum(whole.data(), whole.size(), ip, 16));
    test::ParsedPacket parsed;
    ASSERT_TRUE(test::parsePacket(whole, parsed));
    EXPECT_TRUE(parsed.checksumsOk);
    EXPECT_EQ(parsed.seq, 1000u);
    ASSERT_EQ(parsed.payload.size(), 4u * 1400 + 600);
    for (size_t i = 0; i < parsed.payload.size(); ++i) {
      ASSERT_EQ(parsed.payload[i], static_cast<uint8_t>(1000 + i)) << i;
    }
  }
}

TEST(WriteCoalescer, WhatEndsATcpRun) {
  WriteCoalescer c;
  ASSERT_TRUE(gather(c, {tcpSeg(false, 1000, 1000), tcpSeg(false, 2000, 1000)}));
  auto joins = [&](const std::vector<uint8_t>& p) {
    iovec iov;
    auto v = view(p, iov);
    WriteCoalescer::Piece d;
    return WriteCoalescer::parse(v, d) && c.joins(d);
  };
  EXPECT_FALSE(joins(tcpSeg(false, 3001, 1000)));                // a gap
  EXPECT_FALSE(joins(tcpSeg(false, 2000, 1000)));                // a resend
  EXPECT_FALSE(joins(tcpSeg(false, 3000, 1000, test::kAck, 8)));  // another ACK number
  EXPECT_FALSE(joins(tcpSeg(false, 3000, 1000, test::kAck, 7, 81)));  // another flow
  EXPECT_FALSE(joins(udp(false, 80, 1000, 0)));                  // UDP
  EXPECT_FALSE(joins(tcpSeg(false, 3000, 1001)));                // longer
  EXPECT_TRUE(joins(tcpSeg(false, 3000, 1000)));
  ASSERT_TRUE(gather(c, {tcpSeg(false, 3000, 1000, test::kAck | test::kPsh)}));
  EXPECT_FALSE(joins(tcpSeg(false, 4000, 1000)));  // after PSH
  // SYN, FIN, RST, URG and pure ACKs never join a run.
  WriteCoalescer::Piece d;
  iovec iov;
  for (int f : {test::kSyn | test::kAck, test::kFin | test::kAck, int{test::kRst},
                    test::kAck | 0x20}) {
    auto seg = tcpSeg(false, 1, 10, static_cast<uint8_t>(f));
    EXPECT_FALSE(WriteCoalescer::parse(view(seg, iov), d)) << f;
  }
  auto pureAck = tcpSeg(false, 1, 0);
  EXPECT_FALSE(WriteCoalescer::parse(view(pureAck, iov), d));
}

using NullOwner = test_support::NullStackOwner;

// Through a TunPump with the vnet header (a datagram socketpair stands in
// for the TUN): what one pass writes leaves at the end of the pass, one
// GSO packet per run, and a TCP segment in between keeps its place.
TEST(TunPumpUdpRuns, OnePassOneWritePerRunInOrder) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, fds), 0);
  event::Loop loop;
  NullOwner owner;
  auto stack = netstack::NetStack::create(netstack::NetStackOptions{}, owner);
  ASSERT_TRUE(stack.ok());
  {
    TunPump pump(loop, fds[0], *stack.value(), 1500, /*vnetHeader=*/true);
    auto write = [&](const std::vector<uint8_t>& p) {
      iovec iov;
      pump.writePacket(view(p, iov));
    };
    for (int i = 0; i < 10; ++i) write(udp(false, 53, 1200, static_cast<uint8_t>(i)));
    test::TcpSegment s;
    s.src = "198.18.1.2";
    s.dst = "198.18.2.1";
    s.srcPort = 80;
    s.dstPort = 40000;
    s.flags = test::kAck;
    auto tcp = test::buildTcp(s);
    write(tcp);                              // ends the first run
    write(udp(false, 53, 1200, 50));         // a run of one
    write(udp(true, 443, 700, 60));          // another flow: a run of its own
    write(udp(true, 443, 700, 61));
    uint8_t buf[70000];
    EXPECT_EQ(::recv(fds[1], buf, sizeof buf, 0), 10 + 20 + 8 + 10 * 1200);  // written before the TCP
    EXPECT_EQ(buf[1], 5);
    EXPECT_GT(::recv(fds[1], buf, sizeof buf, 0), 0);  // the TCP segment
    EXPECT_EQ(buf[1], 0);
    // The run of one ended when the other flow came: no GSO for it.
    EXPECT_EQ(::recv(fds[1], buf, sizeof buf, 0), 10 + 20 + 8 + 1200);
    EXPECT_EQ(buf[1], 0);
    EXPECT_LT(::recv(fds[1], buf, sizeof buf, 0), 0);  // the last run waits for the end of the pass
    loop.runOnce(false);
    EXPECT_EQ(::recv(fds[1], buf, sizeof buf, 0), 10 + 40 + 8 + 2 * 700);
    EXPECT_EQ(buf[1], 5);
    EXPECT_EQ(host16(buf + 4), 700);
    EXPECT_EQ(pump.stats().udpGathered, 12u);
    EXPECT_EQ(pump.stats().gsoOut, 2u);
    EXPECT_EQ(pump.stats().packetsOut, 4u);
    EXPECT_EQ(pump.stats().writeDropped, 0u);
    // A run still gathering when the pump stops is written by stop().
    write(udp(false, 53, 100, 1));
    write(udp(false, 53, 100, 2));
    pump.stop();
    EXPECT_EQ(::recv(fds[1], buf, sizeof buf, 0), 10 + 20 + 8 + 2 * 100);
  }
  for (int i = 0; i < 5; ++i) loop.runOnce(false);  // a posted flush finds no pump
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace vt::client
