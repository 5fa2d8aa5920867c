// codec/sniff: the host name from a TLS ClientHello or an HTTP/1.x request
// head, every prefix of them, split records, lying lengths and names we
// refuse.
#include "codec/sniff.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vt::codec {
namespace {

using Bytes = std::vector<uint8_t>;

void put16(Bytes& v, size_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
void put24(Bytes& v, size_t x) {
  v.push_back(static_cast<uint8_t>(x >> 16));
  put16(v, x & 0xFFFF);
}
void append(Bytes& v, const Bytes& w) {
  v.insert(v.end(), w.begin(), w.end());
}

Bytes ext(uint16_t type, const Bytes& data) {
  Bytes v;
  put16(v, type);
  put16(v, data.size());
  append(v, data);
  return v;
}

// server_name carrying one host_name.
Bytes sniExt(const std::string& host) {
  Bytes entry{0};
  put16(entry, host.size());
  entry.insert(entry.end(), host.begin(), host.end());
  Bytes list;
  put16(list, entry.size());
  append(list, entry);
  return ext(0, list);
}

// Other extensions a browser sends before server_name: supported_groups,
// ec_point_formats, a GREASE-like empty one, and a large key_share-ish one.
Bytes otherExts() {
  Bytes v;
  append(v, ext(10, {0x00, 0x04, 0x00, 0x1d, 0x00, 0x17}));
  append(v, ext(11, {0x01, 0x00}));
  append(v, ext(0x0a0a, {}));
  append(v, ext(51, Bytes(1200, 0x42)));
  return v;
}

// A ClientHello handshake message (type, length, body) with `exts` as its
// extension block (omitted entirely when `withExtBlock` is false).
Bytes clientHelloMsg(const Bytes& exts, bool withExtBlock = true) {
  Bytes body{0x03, 0x03};
  for (int i = 0; i < 32; ++i) body.push_back(static_cast<uint8_t>(i));
  body.push_back(32);
  for (int i = 0; i < 32; ++i) body.push_back(0xAA);
  put16(body, 6);
  append(body, {0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f});
  append(body, {0x01, 0x00});
  if (withExtBlock) {
    put16(body, exts.size());
    append(body, exts);
  }
  Bytes msg{0x01};
  put24(msg, body.size());
  append(msg, body);
  return msg;
}

// The message cut into records of at most `recordMax` bytes.
Bytes records(const Bytes& msg, size_t recordMax = 16384) {
  Bytes v;
  for (size_t off = 0; off < msg.size(); off += recordMax) {
    size_t k = std::min(recordMax, msg.size() - off);
    append(v, {0x16, 0x03, 0x01});
    put16(v, k);
    v.insert(v.end(), msg.begin() + static_cast<long>(off),
             msg.begin() + static_cast<long>(off + k));
  }
  return v;
}

Bytes clientHello(const std::string& host) {
  Bytes exts = otherExts();
  append(exts, sniExt(host));
  append(exts, ext(43, {0x02, 0x03, 0x04}));
  return records(clientHelloMsg(exts));
}

Bytes text(const std::string& s) {
  return {s.begin(), s.end()};
}

SniffResult sniff(const Bytes& v) {
  return sniffHost(v.data(), v.size());
}

// Every strict prefix is kNeedMore or kNone (never a name), and once kNone
// it stays kNone; the whole gives `want`.
void checkPrefixes(const Bytes& v, SniffStatus want, const std::string& host,
                   const char* protocol) {
  bool sawNone = false;
  for (size_t k = 0; k < v.size(); ++k) {
    // Exactly k bytes on the heap so ASan catches any read past them.
    Bytes cut(v.begin(), v.begin() + static_cast<long>(k));
    SniffResult r = sniff(cut);
    if (r.status == SniffStatus::kFound) {
      ASSERT_EQ(want, SniffStatus::kFound) << "found at " << k;
      ASSERT_EQ(r.host, host) << "found a wrong name at " << k;
    }
    if (sawNone) {
      ASSERT_EQ(r.status, SniffStatus::kNone) << "kNone undone at " << k;
    }
    sawNone = r.status == SniffStatus::kNone;
  }
  SniffResult r = sniff(v);
  EXPECT_EQ(r.status, want);
  EXPECT_EQ(r.host, host);
  if (protocol) {
    EXPECT_STREQ(r.protocol, protocol);
  }
}

TEST(Sniff, TlsClientHelloWithSni) {
  Bytes ch = clientHello("Www.Example.COM");
  SniffResult r = sniff(ch);
  ASSERT_EQ(r.status, SniffStatus::kFound);
  EXPECT_EQ(r.host, "www.example.com");
  EXPECT_STREQ(r.protocol, "tls");
}

TEST(Sniff, TlsEveryPrefixNeedsMore) {
  Bytes ch = clientHello("a.example.test");
  for (size_t k = 0; k < ch.size(); ++k) {
    Bytes cut(ch.begin(), ch.begin() + static_cast<long>(k));
    EXPECT_EQ(sniff(cut).status, SniffStatus::kNeedMore) << k;
  }
  checkPrefixes(ch, SniffStatus::kFound, "a.example.test", "tls");
  // Bytes after the ClientHello (the next flight) change nothing.
  Bytes more = ch;
  append(more, {0x14, 0x03, 0x03, 0x00, 0x01, 0x01});
  EXPECT_EQ(sniff(more).host, "a.example.test");
}

TEST(Sniff, TlsSniFirstAndOnly) {
  Bytes ch = records(clientHelloMsg(sniExt("only.test")));
  checkPrefixes(ch, SniffStatus::kFound, "only.test", "tls");
}

TEST(Sniff, TlsWithoutSni) {
  checkPrefixes(records(clientHelloMsg(otherExts())), SniffStatus::kNone, "", "tls");
  checkPrefixes(records(clientHelloMsg({})), SniffStatus::kNone, "", "tls");
  checkPrefixes(records(clientHelloMsg({}, false)), SniffStatus::kNone, "", "tls");
}

TEST(Sniff, TlsFragmentedOverRecords) {
  Bytes exts = otherExts();
  append(exts, sniExt("split.example.test"));
  Bytes msg = clientHelloMsg(exts);
  for (size_t recordMax : {1u, 2u, 3u, 7u, 100u, 1000u}) {
    Bytes v = records(msg, recordMax);
    if (v.size() > kMaxSniffBytes) {
      EXPECT_EQ(sniff(v).status, SniffStatus::kNone) << recordMax;
      continue;
    }
    SniffResult r = sniff(v);
    EXPECT_EQ(r.status, SniffStatus::kFound) << recordMax;
    EXPECT_EQ(r.host, "split.example.test") << recordMax;
  }
  checkPrefixes(records(msg, 500), SniffStatus::kFound, "split.example.test", "tls");
}

TEST(Sniff, TlsRecordHeaderRefusedEarly) {
  EXPECT_EQ(sniff({0x16}).status, SniffStatus::kNeedMore);
  EXPECT_EQ(sniff({0x16, 0x02}).status, SniffStatus::kNone);                          // not 3.x
  EXPECT_EQ(sniff({0x16, 0x03, 0x01, 0x00, 0x00}).status, SniffStatus::kNone);        // empty
  EXPECT_EQ(sniff({0x16, 0x03, 0x01, 0x40, 0x01}).status, SniffStatus::kNone);        // > 2^14
  EXPECT_EQ(sniff({0x16, 0x03, 0x01, 0x00, 0x10, 0x02}).status, SniffStatus::kNone);  // ServerHello
  // A ClientHello too short to be one, or too long to fit the window.
  EXPECT_EQ(sniff({0x16, 0x03, 0x01, 0x00, 0x10, 0x01, 0x00, 0x00, 0x05}).status,
            SniffStatus::kNone);
  EXPECT_EQ(sniff({0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x40, 0x00}).status,
            SniffStatus::kNone);
  // A non-handshake record after the first fragment.
  Bytes v = records(clientHelloMsg(sniExt("x.test")), 10);
  v[15] = 0x17;
  EXPECT_EQ(sniff(v).status, SniffStatus::kNone);
}

// A ClientHello whose body is `exts` as given (lengths not recomputed).
Bytes withRawExts(const Bytes& raw) {
  return records(clientHelloMsg(raw));
}

TEST(Sniff, TlsLyingLengths) {
  // Extension length past the end of the extension block.
  Bytes bad = ext(0, {});
  bad[3] = 50;
  EXPECT_EQ(sniff(withRawExts(bad)).status, SniffStatus::kNone);
  // SNI list length larger, then smaller, than the extension.
  for (int delta : {+1, -1}) {
    Bytes s = sniExt("lie.test");
    s[5] = static_cast<uint8_t>(s[5] + delta);
    EXPECT_EQ(sniff(withRawExts(s)).status, SniffStatus::kNone) << delta;
  }
  // Name length past the list.
  Bytes s = sniExt("lie.test");
  s[8] = 40;
  EXPECT_EQ(sniff(withRawExts(s)).status, SniffStatus::kNone);
  // Extension block length larger than the ClientHello.
  Bytes msg = clientHelloMsg(sniExt("lie.test"));
  size_t extLenAt = 4 + 2 + 32 + 1 + 32 + 2 + 6 + 2;
  msg[extLenAt + 1] = static_cast<uint8_t>(msg[extLenAt + 1] + 1);
  EXPECT_EQ(sniff(records(msg)).status, SniffStatus::kNone);
  // Session id longer than 32.
  msg = clientHelloMsg(sniExt("lie.test"));
  msg[4 + 2 + 32] = 33;
  EXPECT_EQ(sniff(records(msg)).status, SniffStatus::kNone);
  // Handshake length larger than what the records then carry: waits, and
  // a following record that is not a handshake ends it.
  msg = clientHelloMsg(sniExt("lie.test"));
  msg[3] = static_cast<uint8_t>(msg[3] + 4);
  Bytes v = records(msg);
  EXPECT_EQ(sniff(v).status, SniffStatus::kNeedMore);
  append(v, {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28});
  EXPECT_EQ(sniff(v).status, SniffStatus::kNone);
}

TEST(Sniff, TlsOtherNameTypeSkipped) {
  Bytes list;
  append(list, {0x07, 0x00, 0x02, 'x', 'y'});
  append(list, {0x00, 0x00, 0x06, 'o', 'k', '.', 't', 's', 't'});
  Bytes data;
  put16(data, list.size());
  append(data, list);
  EXPECT_EQ(sniff(withRawExts(ext(0, data))).host, "ok.tst");
}

TEST(Sniff, TlsBadNames) {
  for (std::string bad :
       {std::string(""), std::string("a b.test"), std::string("a..test"), std::string(".test"),
        std::string("\x01x.test"), std::string("x.test\0", 7), std::string("h\xc3\xa9.test"),
        std::string(254, 'a'), std::string(64, 'a') + ".test", std::string("a/b"),
        std::string("[::1]")}) {
    SniffResult r = sniff(clientHello(bad));
    EXPECT_EQ(r.status, SniffStatus::kNone) << bad;
    EXPECT_TRUE(r.host.empty());
  }
  std::string longest;
  for (int i = 0; i < 4; ++i) longest += std::string(i < 3 ? 63 : 61, 'a') + (i < 3 ? "." : "");
  ASSERT_EQ(longest.size(), 253u);
  EXPECT_EQ(sniff(clientHello(longest)).host, longest);
  EXPECT_EQ(sniff(clientHello("under_score.test.")).host, "under_score.test");
}

TEST(Sniff, HttpHost) {
  checkPrefixes(text("GET /index.html HTTP/1.1\r\nUser-Agent: x\r\nHost: Example.COM\r\n"
                     "Accept: */*\r\n\r\n"),
                SniffStatus::kFound, "example.com", "http");
  EXPECT_EQ(sniff(text("POST / HTTP/1.0\r\nhost:   api.test:8080  \r\n")).host, "api.test");
  EXPECT_EQ(sniff(text("HEAD / HTTP/1.1\r\nHOST:\tv6.test\r\n")).host, "v6.test");
  EXPECT_EQ(sniff(text("PUT / HTTP/1.1\r\nHost: [2001:DB8::1]:80\r\n")).host, "2001:db8::1");
  EXPECT_EQ(sniff(text("GET / HTTP/1.1\r\nHost: [::1]\r\n")).host, "::1");
  EXPECT_EQ(sniff(text("GET / HTTP/1.1\nHost: bare-lf.test\n")).host, "bare-lf.test");
  EXPECT_EQ(sniff(text("GET / HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n")).host, "10.0.0.1");
  // A body after the header block changes nothing.
  EXPECT_EQ(sniff(text(std::string("GET / HTTP/1.1\r\nHost: b.test\r\n\r\n\x00\x01", 34))).host,
            "b.test");
}

TEST(Sniff, HttpAbsoluteAndConnect) {
  SniffResult r =
      sniff(text("GET http://user@Abs.Example:81/p?q HTTP/1.1\r\nHost: other.test\r\n\r\n"));
  EXPECT_EQ(r.status, SniffStatus::kFound);
  EXPECT_EQ(r.host, "abs.example");
  // The request line alone is enough.
  EXPECT_EQ(sniff(text("GET https://abs.test HTTP/1.1\r\n")).host, "abs.test");
  EXPECT_EQ(sniff(text("GET http://[fe80::2]:8080/ HTTP/1.1\r\n")).host, "fe80::2");
  EXPECT_EQ(sniff(text("CONNECT tunnel.test:443 HTTP/1.1\r\n")).host, "tunnel.test");
  EXPECT_EQ(sniff(text("CONNECT [::2]:443 HTTP/1.1\r\n")).host, "::2");
  EXPECT_EQ(sniff(text("CONNECT tunnel.test:https HTTP/1.1\r\n")).status, SniffStatus::kNone);
}

TEST(Sniff, HttpNoHostOrBroken) {
  checkPrefixes(text("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), SniffStatus::kNone, "", "http");
  EXPECT_EQ(sniff(text("GET / HTTP/1.1\r\nAccept: */*\r\n")).status, SniffStatus::kNeedMore);
  EXPECT_EQ(sniff(text("GET / HTTP/1.1\r\nHost: bad host\r\n")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("GET / HTTP/1.1\r\nHost: \r\n")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("GET / HTTP/1.1\r\nHost: a.test:80:80\r\n")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("GET / HTTP/1.1\r\nHost: ::1\r\n")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("GET / HTTP/1.1\r\nHost: [example.test]\r\n")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("GET / HTTP/1.1\r\nHost: x%2e.test\r\n")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("GET / HTTP/1.1\r\nHost : a.test\r\n")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("GET / HTTP/1.1\r\nno colon\r\n")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("GET / HTTP/2.0\r\nHost: a.test\r\n")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("GET /\r\nHost: a.test\r\n")).status, SniffStatus::kNone);
  // A control byte in the head ends it at once.
  EXPECT_EQ(sniff(text(std::string("GET /\x00", 6))).status, SniffStatus::kNone);
}

TEST(Sniff, NotAMethodRefusedEarly) {
  EXPECT_EQ(sniff({}).status, SniffStatus::kNeedMore);
  EXPECT_EQ(sniff(text("G")).status, SniffStatus::kNeedMore);
  EXPECT_EQ(sniff(text("GE")).status, SniffStatus::kNeedMore);
  EXPECT_EQ(sniff(text("GET")).status, SniffStatus::kNeedMore);
  EXPECT_EQ(sniff(text("GETS")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("GX")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("PRI * HTTP/2.0\r\n")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("get / HTTP/1.1\r\n")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff(text("SSH-2.0-OpenSSH\r\n")).status, SniffStatus::kNone);
  EXPECT_EQ(sniff({0x00, 0x01}).status, SniffStatus::kNone);
  EXPECT_EQ(sniff({0x05, 0x01, 0x00}).status, SniffStatus::kNone);
  for (std::string m : {"POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "HEAD"}) {
    EXPECT_EQ(sniff(text(m + " / HTTP/1.1\r\nHost: m.test\r\n")).host, "m.test") << m;
  }
}

TEST(Sniff, CapEndsTheWait) {
  // A header block still open at the cap is given up on.
  std::string head = "GET / HTTP/1.1\r\nX-Pad: " + std::string(kMaxSniffBytes, 'a');
  EXPECT_EQ(sniff(text(head.substr(0, kMaxSniffBytes - 1))).status, SniffStatus::kNeedMore);
  EXPECT_EQ(sniff(text(head)).status, SniffStatus::kNone);
  // A full 2^14 record holding the ClientHello (padding extension) fits.
  Bytes exts = sniExt("big.test");
  Bytes probe = clientHelloMsg(exts);
  size_t pad = 16384 - probe.size() - 4;
  append(exts, ext(21, Bytes(pad, 0)));
  Bytes msg = clientHelloMsg(exts);
  ASSERT_EQ(msg.size(), 16384u);
  Bytes v = records(msg);
  ASSERT_EQ(v.size(), kMaxSniffBytes);
  EXPECT_EQ(sniff(v).host, "big.test");
}

TEST(Sniff, NormalizeHost) {
  EXPECT_EQ(sniffNormalizeHost("A-b_C.Test"), "a-b_c.test");
  EXPECT_EQ(sniffNormalizeHost("x."), "x");
  EXPECT_FALSE(sniffNormalizeHost("."));
  EXPECT_FALSE(sniffNormalizeHost("x.."));
  EXPECT_EQ(sniffNormalizeHost("::FFFF:1.2.3.4"), "::ffff:1.2.3.4");
  EXPECT_FALSE(sniffNormalizeHost("fe80::1%eth0"));
  EXPECT_FALSE(sniffNormalizeHost(":::"));
}

}  // namespace
}  // namespace vt::codec
