// vless:// share links (config/vless_link.h): links shaped as providers and
// panels (Xray, 3x-ui, v2rayN, sing-box) export them, every refusal with
// its message, the canonical form, and the config written from a link.
#include "config/vless_link.h"

#include <gtest/gtest.h>

#include <string>

#include "config/client_config.h"

namespace vt::config {
namespace {

constexpr const char* kId = "b831381d-6324-4d53-ad4f-8cda48b30811";

std::string L(const std::string& rest) {
  return std::string("vless://") + kId + "@" + rest;
}

VlessLink ok(const std::string& link, const std::set<std::string>& ignore = {}) {
  auto r = parseVlessLink(link, ignore);
  EXPECT_TRUE(r.ok()) << link << "\n" << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : VlessLink{};
}

std::string err(const std::string& link, const std::set<std::string>& ignore = {}) {
  auto r = parseVlessLink(link, ignore);
  EXPECT_FALSE(r.ok()) << link;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Errc::kConfig);
  EXPECT_EQ(r.error().message.rfind("vless link: ", 0), 0u) << r.error().message;
  // The user id is the secret: in no message, whatever went wrong.
  EXPECT_EQ(r.error().message.find("b831381d"), std::string::npos) << r.error().message;
  return r.error().message;
}

#define EXPECT_HAS(msg, piece) EXPECT_NE((msg).find(piece), std::string::npos) << (msg)

TEST(VlessLink, TcpTlsWithSniAlpnAndIgnoredFingerprint) {
  // 3x-ui's shape for a TLS inbound; fp is uTLS, skipped on request.
  VlessLink l = ok(L("vpn.example.com:443?type=tcp&security=tls&fp=chrome&alpn=h2%2Chttp%2F1.1"
                     "&sni=front.example.com&encryption=none#DE-1"),
                   {"fp"});
  EXPECT_EQ(l.uuid_text, kId);
  EXPECT_EQ(uuidText(l.uuid), kId);
  EXPECT_EQ(l.host, "vpn.example.com");
  EXPECT_EQ(l.port, 443);
  EXPECT_FALSE(l.ipv6_literal);
  EXPECT_EQ(l.version, 0);
  EXPECT_TRUE(l.tls);
  EXPECT_EQ(l.sni, "front.example.com");
  EXPECT_EQ(l.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_FALSE(l.insecure);
  EXPECT_FALSE(l.ws);
  EXPECT_EQ(l.ws_path, "");
  EXPECT_EQ(l.ws_host, "");
  EXPECT_EQ(l.ws_early_data, 0u);
  EXPECT_EQ(l.name, "DE-1");
}

TEST(VlessLink, WsTlsWithEarlyDataPathAndHost) {
  VlessLink l =
      ok(L("104.16.1.2:443?encryption=none&security=tls&sni=cdn.example.com"
           "&type=ws&host=cdn.example.com&path=%2Fray%3Fed%3D2048#CDN%20node"));
  EXPECT_EQ(l.host, "104.16.1.2");
  EXPECT_EQ(l.port, 443);
  EXPECT_TRUE(l.tls);
  EXPECT_EQ(l.sni, "cdn.example.com");
  EXPECT_TRUE(l.alpn.empty());
  EXPECT_TRUE(l.ws);
  EXPECT_EQ(l.ws_path, "/ray?ed=2048");  // kept: our path carries the query
  EXPECT_EQ(l.ws_host, "cdn.example.com");
  EXPECT_EQ(l.ws_early_data, 2048u);
  EXPECT_EQ(l.name, "CDN node");
}

TEST(VlessLink, WsEarlyDataVariants) {
  EXPECT_EQ(ok(L("h.example:80?type=ws&path=/ws?ed=1024")).ws_early_data, 1024u);
  EXPECT_EQ(ok(L("h.example:80?type=ws&path=/ws?x=1%26ed=512")).ws_early_data, 512u);
  EXPECT_EQ(ok(L("h.example:80?type=ws&path=/ws?ed=4096")).ws_early_data, 2048u);  // capped
  EXPECT_EQ(ok(L("h.example:80?type=ws&path=/ws?ed=0")).ws_early_data, 0u);
  EXPECT_EQ(ok(L("h.example:80?type=ws&path=/ws?ed=abc")).ws_early_data, 0u);
  EXPECT_EQ(ok(L("h.example:80?type=ws&path=/ws?red=5")).ws_early_data, 0u);
  EXPECT_EQ(ok(L("h.example:80?type=ws")).ws_path, "/");
  EXPECT_EQ(ok(L("h.example:80?type=ws&path=")).ws_path, "/");
}

TEST(VlessLink, PlainTcpMinimal) {
  VlessLink l = ok(L("198.18.0.2:8443"));
  EXPECT_EQ(l.host, "198.18.0.2");
  EXPECT_EQ(l.port, 8443);
  EXPECT_FALSE(l.tls);
  EXPECT_FALSE(l.ws);
  EXPECT_EQ(l.version, 0);
  EXPECT_EQ(l.name, "");
  // v2rayN's plain shape with every key written, some empty.
  VlessLink v =
      ok(L("198.18.0.2:8443?encryption=none&security=none&type=tcp&headerType=none"
           "&flow=&sni=&fp=#plain"));
  EXPECT_FALSE(v.tls);
  EXPECT_EQ(v.name, "plain");
}

TEST(VlessLink, Ipv6Host) {
  VlessLink l = ok(L("[2001:db8::2]:443?security=tls&sni=v6.example.com&type=tcp#v6"));
  EXPECT_EQ(l.host, "2001:db8::2");
  EXPECT_TRUE(l.ipv6_literal);
  EXPECT_EQ(l.port, 443);
  EXPECT_EQ(l.sni, "v6.example.com");
  EXPECT_EQ(formatVlessLink(l).find("@[2001:db8::2]:443?"), 44u);
}

TEST(VlessLink, PercentEncodedUtf8Names) {
  EXPECT_EQ(ok(L("h.example:443#%F0%9F%87%A9%F0%9F%87%AA%20Frankfurt%20%231")).name,
            "\xF0\x9F\x87\xA9\xF0\x9F\x87\xAA Frankfurt #1");
  EXPECT_EQ(ok(L("h.example:443#%E6%97%A5%E6%9C%AC+Tokyo")).name,
            "\xE6\x97\xA5\xE6\x9C\xAC+Tokyo");  // '+' is no space in a fragment
  // Raw UTF-8 pasted unencoded is taken as it is.
  EXPECT_EQ(ok(L("h.example:443#Z\xC3\xBCrich")).name, "Z\xC3\xBCrich");
  EXPECT_EQ(ok(L("h.example:443#")).name, "");
}

TEST(VlessLink, PeerAndAllowInsecure) {
  VlessLink l = ok(L("h.example:443?security=tls&peer=old.example.com&allowInsecure=1#old"));
  EXPECT_EQ(l.sni, "old.example.com");
  EXPECT_TRUE(l.insecure);
  EXPECT_TRUE(ok(L("h.example:443?security=tls&insecure=true")).insecure);
  EXPECT_FALSE(ok(L("h.example:443?security=tls&allowInsecure=0")).insecure);
  EXPECT_FALSE(ok(L("h.example:443?security=tls&allowInsecure=false&insecure=0")).insecure);
  EXPECT_EQ(ok(L("h.example:443?security=tls&sni=a.example&peer=a.example")).sni, "a.example");
}

TEST(VlessLink, OurV1ExtensionAndOtherForms) {
  VlessLink l = ok(L("vpn.example.com:443?security=tls&vtv=1#ours"));
  EXPECT_EQ(l.version, 1);
  EXPECT_EQ(ok(L("vpn.example.com:443?vtv=0")).version, 0);
  // Upper-case scheme, 32-digit id, "/?" after the port, whitespace around,
  // Xray's newer "raw" for tcp, '+' as a space in a value.
  VlessLink u =
      ok("  VLESS://B831381D63244D53AD4F8CDA48B30811@h.example:443/?type=raw&security=tls"
         "&sni=h.example\n");
  EXPECT_EQ(u.uuid_text, kId);
  EXPECT_FALSE(u.ws);
  // '+' is a space in a query value (Go's url.ParseQuery), and no path has one.
  EXPECT_HAS(err(L("h.example:80?type=ws&path=/a+b")), "parameter \"path\"");
  EXPECT_EQ(ok(L("h.example:80?type=ws&path=/a%2Bb")).ws_path, "/a+b");
}

TEST(VlessLink, SecurityNoneDropsTlsSettings) {
  VlessLink l = ok(L("h.example:80?security=none&sni=h.example&alpn=h2&allowInsecure=1"));
  EXPECT_FALSE(l.tls);
  EXPECT_EQ(l.sni, "");
  EXPECT_TRUE(l.alpn.empty());
  EXPECT_FALSE(l.insecure);
}

TEST(VlessLink, IgnoreSet) {
  std::string link = L("h.example:443?security=tls&fp=chrome&spx=%2F&foo=bar");
  EXPECT_HAS(err(link), "fp=chrome: TLS fingerprint imitation (uTLS) is not supported");
  EXPECT_HAS(err(link, {"fp"}), "parameter \"spx\": a REALITY setting");
  EXPECT_HAS(err(link, {"fp", "spx"}), "unknown parameter \"foo\"");
  EXPECT_TRUE(ok(link, {"fp", "spx", "foo"}).tls);
  // Never for keys that change what is spoken.
  EXPECT_HAS(err(L("h.example:443?flow=xtls-rprx-vision"), {"flow"}), "flow=xtls-rprx-vision");
  EXPECT_HAS(err(L("h.example:443?security=reality"), {"security"}), "REALITY");
}

TEST(VlessLink, Unsupported) {
  EXPECT_HAS(err(L("h.example:443?encryption=mlkem768x25519plus.native.0rtt.abc")),
             "parameter \"encryption\": \"mlkem768x25519plus.native.0rtt.abc\" is not supported");
  EXPECT_HAS(err(L("h.example:443?security=reality&pbk=abc&sid=12&fp=chrome")),
             "vless link: security=reality: REALITY is not supported by vless-tun");
  EXPECT_HAS(err(L("h.example:443?security=xtls")), "security=xtls: XTLS is not supported");
  EXPECT_HAS(err(L("h.example:443?security=ssl")), "parameter \"security\": expected tls or none");
  const std::pair<const char*, const char*> transports[] = {
      {"grpc", "gRPC"},   {"h2", "HTTP/2"},      {"http", "HTTP/2"},
      {"quic", "QUIC"},   {"kcp", "mKCP"},       {"httpupgrade", "HTTPUpgrade"},
      {"xhttp", "XHTTP"}, {"splithttp", "XHTTP"}};
  for (const auto& [t, name] : transports) {
    std::string m = err(L("h.example:443?security=tls&type=") + t + "&serviceName=x");
    EXPECT_HAS(m, std::string("parameter \"type\": the ") + name + " transport (type=" + t + ")");
    EXPECT_HAS(m, "not supported by vless-tun (tcp and ws are)");
  }
  EXPECT_HAS(err(L("h.example:443?type=foo")),
             "parameter \"type\": expected tcp or ws, got \"foo\"");
  EXPECT_HAS(err(L("h.example:443?type=tcp&headerType=http&host=a.example&path=%2F")),
             "headerType=http: HTTP header obfuscation is not supported");
  EXPECT_HAS(err(L("h.example:443?headerType=srtp")), "parameter \"headerType\": expected none");
  EXPECT_HAS(err(L("h.example:443?type=tcp&host=a.example")),
             "parameter \"host\": an HTTP Host with type=tcp means HTTP header obfuscation");
  EXPECT_HAS(err(L("h.example:443?path=%2Fx")), "parameter \"path\": a path with type=tcp");
  EXPECT_HAS(err(L("h.example:443?security=tls&flow=xtls-rprx-vision")),
             "flow=xtls-rprx-vision: XTLS flows (Vision) are not supported by vless-tun");
  EXPECT_HAS(err(L("h.example:443?security=tls&pbk=abc")), "parameter \"pbk\": a REALITY setting");
  EXPECT_HAS(err(L("h.example:443?sid=ab")), "parameter \"sid\"");
  EXPECT_HAS(err(L("h.example:443?foo=")), "vless link: unknown parameter \"foo\"");
  EXPECT_HAS(err(L("h.example:443?Security=tls")),
             "unknown parameter \"Security\"");  // case counts
}

TEST(VlessLink, Malformed) {
  EXPECT_HAS(err("vmess://abc"), "expected a link starting with vless://");
  EXPECT_HAS(err("vless://h.example:443"), "found no '@'");
  EXPECT_HAS(err("vless://b831381d-6324-4d53-ad4f-8cda48b3081@h.example:443"),
             "the user id is not a UUID");
  EXPECT_HAS(err("vless://b831381d-6324-4d53-ad4f-8cda48b30811x@h.example:443"),
             "not shown: a secret");
  EXPECT_HAS(err("vless://b831381d%zz@h.example:443"), "the user id is not a UUID");
  EXPECT_HAS(err(L("h.example")), "found no port");
  EXPECT_HAS(err(L("h.example:0")), "port \"0\": expected 1..65535");
  EXPECT_HAS(err(L("h.example:65536")), "port \"65536\"");
  EXPECT_HAS(err(L("h.example:44x")), "port \"44x\"");
  EXPECT_HAS(err(L("h.example:")), "port \"\"");
  EXPECT_HAS(err(L("bad_host!:443")), "host \"bad_host!\": expected a DNS name or an IP literal");
  EXPECT_HAS(err(L("2001:db8::2:443")), "host \"2001:db8::2\"");
  EXPECT_HAS(err(L("[2001:db8::zz]:443")), "host \"2001:db8::zz\"");
  EXPECT_HAS(err(L("[2001:db8::2:443")), "closing ']'");
  EXPECT_HAS(err(L(std::string("[2001:db8::\0x]:443", 18))), "host \"2001:db8::?x\"");
  EXPECT_HAS(err(L(std::string("198.18.0.2\0x:443", 16))), "host \"198.18.0.2?x\"");
  EXPECT_HAS(err(L(":443")), "host \"\"");
  EXPECT_HAS(err(L("h.example:443/x?a=b")), "unexpected path \"/x\"");
  EXPECT_HAS(err(L("h.example:443?type=ws&type=ws")), "parameter \"type\": given twice");
  EXPECT_HAS(err(L("h.example:443?path=%2")), "parameter \"path\": broken percent-encoding");
  EXPECT_HAS(err(L("h.example:443?=x")), "a parameter without a name");
  EXPECT_HAS(err(L("h.example:443#%ZZ")), "the name (after #): broken percent-encoding");
  EXPECT_HAS(err(L("h.example:443#a%0Ab")), "the name (after #): expected UTF-8 text");
  EXPECT_HAS(err(L("h.example:443#%C3")), "expected UTF-8");
  EXPECT_HAS(err(L("h.example:443?vtv=2")), "parameter \"vtv\": expected 0 or 1");
  EXPECT_HAS(err(L("h.example:443?security=tls&allowInsecure=yes")),
             "parameter \"allowInsecure\": expected 1, true, 0 or false");
  EXPECT_HAS(err(L("h.example:443?security=tls&allowInsecure=1&insecure=0")),
             "parameter \"insecure\": contradicts");
  EXPECT_HAS(err(L("h.example:443?sni=a.example&peer=b.example")), "parameter \"peer\": differs");
  EXPECT_HAS(err(L("h.example:443?security=tls&sni=a%20b")), "parameter \"sni\"");
  EXPECT_HAS(err(L("h.example:443?security=tls&alpn=h2,,http%2F1.1")), "parameter \"alpn\"");
  EXPECT_HAS(err(L("h.example:443?type=ws&path=ray")),
             "parameter \"path\": expected a path like /ray");
  EXPECT_HAS(err(L("h.example:443?type=ws&path=%2Fa%20b")), "parameter \"path\"");
  EXPECT_HAS(err(L("h.example:443?type=ws&host=a%20b")), "parameter \"host\"");
}

TEST(VlessLink, CanonicalFormRoundTrips) {
  const std::string canonical[] = {
      L("vpn.example.com:443?encryption=none&security=tls&sni=front.example.com"
        "&alpn=h2%2Chttp%2F1.1&type=tcp#DE-1"),
      L("104.16.1.2:443?encryption=none&security=tls&sni=cdn.example.com&type=ws"
        "&host=cdn.example.com&path=%2Fray%3Fed%3D2048#CDN%20node"),
      L("198.18.0.2:8443?encryption=none&security=none&type=tcp#"),
      L("[2001:db8::2]:443?encryption=none&security=tls&allowInsecure=1&type=ws&path=%2F&vtv=1"
        "#%F0%9F%87%A9%F0%9F%87%AA%20a%2Bb%23c"),
  };
  for (const auto& c : canonical) {
    VlessLink l = ok(c);
    EXPECT_EQ(formatVlessLink(l), c);
  }
  // Any accepted link: parse -> format -> parse is the same struct, and the
  // canonical form is a fixed point.
  const std::string links[] = {
      L("vpn.example.com:443?type=tcp&security=tls&fp=&alpn=h2&sni=x.example&peer=x.example#A%20B"),
      L("h.example:80?type=ws&path=/ws?ed=4096&host=cdn.example#\xC3\xBC"),
      L("[::1]:1?security=tls&allowInsecure=true&vtv=1"),
      L("h.example:443/?security=tls&type=ws&path=%2F%22q%5C#"),
      "VLESS://B831381D63244D53AD4F8CDA48B30811@h.example:443",
  };
  for (const auto& s : links) {
    VlessLink a = ok(s);
    std::string f = formatVlessLink(a);
    VlessLink b = ok(f);
    EXPECT_EQ(a, b) << s << "\n" << f;
    EXPECT_EQ(formatVlessLink(b), f);
  }
}

TEST(VlessLink, ClientConfigFromLink) {
  const std::string links[] = {
      L("vpn.example.com:443?security=tls&sni=front.example.com&alpn=h2%2Chttp%2F1.1#DE%20%221%22"),
      L("104.16.1.2:443?security=tls&type=ws&host=cdn.example.com&path=%2Fray%3Fed%3D2048"),
      L("198.18.0.2:8443#plain"),
      L("[2001:db8::2]:443?security=tls&allowInsecure=1&type=ws&path=%2F%22q%5C&vtv=1#v1"),
  };
  for (const auto& s : links) {
    VlessLink l = ok(s);
    std::string toml = clientConfigToml(l);
    auto r = parseClientConfig(toml, "link.toml", "/etc/vt");
    ASSERT_TRUE(r.ok()) << toml << "\n" << r.error().message;
    const ClientServerConfig& c = r.value().server;
    EXPECT_EQ(c.address.host, l.host) << toml;
    EXPECT_EQ(c.address.port, l.port);
    EXPECT_EQ(c.uuid, l.uuid);
    EXPECT_EQ(c.version, l.version);
    EXPECT_EQ(c.connect_mode, l.version == 1 ? ConnectMode::kWait : ConnectMode::kImmediate);
    EXPECT_EQ(c.tls, l.tls);
    EXPECT_EQ(c.sni, l.sni.empty() ? l.host : l.sni);
    EXPECT_EQ(c.alpn, l.alpn);
    EXPECT_EQ(c.insecure, l.insecure);
    EXPECT_EQ(c.ca_file, "");
    ASSERT_EQ(c.ws.has_value(), l.ws) << toml;
    if (l.ws) {
      EXPECT_EQ(c.ws->path, l.ws_path);
      EXPECT_EQ(c.ws->host, l.ws_host);
      EXPECT_EQ(c.ws->early_data, l.ws_early_data);
    }
    if (!l.name.empty()) {
      EXPECT_HAS(toml, l.name);
    }
  }
}

}  // namespace
}  // namespace vt::config
