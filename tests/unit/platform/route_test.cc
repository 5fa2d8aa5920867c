// RouteManager in real network namespaces (see netns_world.h for the
// diagram). Needs root: without it, or without namespaces, the tests FAIL.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "netns_world.h"
#include "route_manager.h"

namespace vt::platform {
namespace {

using test::run;

class RouteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err = world_.build();
    ASSERT_EQ(err, "") << "test world set-up failed";
  }

  RouteOptions options() const {
    RouteOptions o;
    o.tunName = "vt-tun0";
    o.stateFile = world_.stateFile;
    return o;
  }

  // Everything RouteManager may touch, in `ip` syntax.
  static std::string snapshot() {
    return run("ip rule show") + run("ip -6 rule show") + run("ip route show table all") +
           run("ip -6 route show table all");
  }

  static std::string routeGet(const std::string& args) {
    return run(std::string(args.find(':') != std::string::npos ? "ip -6" : "ip") + " route get " +
               args);
  }

  static size_t count(const std::string& hay, const std::string& needle) {
    size_t n = 0;
    for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
  }

  static bool fileExists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

  test::World world_;
};

TEST_F(RouteTest, CapturesEverythingButMarkedSockets) {
  RouteManager mgr(options());
  Status st = mgr.apply();
  ASSERT_TRUE(st.ok()) << st.error().toString();
  EXPECT_TRUE(fileExists(world_.stateFile));

  const std::string rules4 = run("ip rule show");
  EXPECT_NE(rules4.find("9000:\tfrom all lookup main suppress_prefixlength 0"), std::string::npos)
      << rules4;
  EXPECT_NE(rules4.find("9001:\tfrom all to 10.0.0.0/8 lookup main"), std::string::npos) << rules4;
  EXPECT_NE(rules4.find("9001:\tfrom 198.18.1.1 lookup main"), std::string::npos) << rules4;
  EXPECT_NE(rules4.find("9002:\tnot from all fwmark 0x1f0 lookup 2022"), std::string::npos)
      << rules4;
  EXPECT_EQ(rules4.find("from 198.18.0.1 "), std::string::npos) << "TUN address must not bypass";
  const std::string rules6 = run("ip -6 rule show");
  EXPECT_NE(rules6.find("9000:\tfrom all lookup main suppress_prefixlength 0"), std::string::npos)
      << rules6;
  EXPECT_NE(rules6.find("9001:\tfrom all to fc00::/7 lookup main"), std::string::npos) << rules6;
  EXPECT_NE(rules6.find("9001:\tfrom 2001:db8:1::1 lookup main"), std::string::npos) << rules6;
  EXPECT_NE(rules6.find("9002:\tnot from all fwmark 0x1f0 lookup 2022"), std::string::npos)
      << rules6;

  // Route lookups: unmarked -> TUN, marked -> the real uplink.
  std::string r = routeGet("198.18.200.1");
  EXPECT_NE(r.find("dev vt-tun0 table 2022 src 198.18.0.1"), std::string::npos) << r;
  r = routeGet("198.18.200.1 mark 0x1f0");
  EXPECT_NE(r.find("dev h0"), std::string::npos) << r;
  r = routeGet("2001:db8:200::1");
  EXPECT_NE(r.find("dev vt-tun0"), std::string::npos) << r;
  EXPECT_NE(r.find("table 2022"), std::string::npos) << r;
  r = routeGet("2001:db8:200::1 mark 0x1f0");
  EXPECT_NE(r.find("dev h0"), std::string::npos) << r;

  // Real packets. The "internet" server listens in the gw namespace.
  for (const std::string ip : {"198.18.200.1", "2001:db8:200::1"}) {
    SCOPED_TRACE(ip);
    const int family = ip.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    int server = world_.gw->socketIn(family, SOCK_DGRAM);
    ASSERT_GE(server, 0);
    socklen_t len;
    sockaddr_storage a = test::makeAddr(ip, 5353, &len);
    ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&a), len), 0) << strerror(errno);

    int plain = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int marked = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    Error err;
    ASSERT_TRUE(setSocketMark(marked, 0x1f0, &err)) << err.toString();

    const std::string viaTun = "unmarked-goes-to-tun-" + ip;
    ASSERT_TRUE(test::udpSend(plain, ip, 5353, viaTun)) << strerror(errno);
    EXPECT_TRUE(test::waitForPayload(world_.tun->fd(), viaTun, 2000, true))
        << "unmarked packet did not appear on the TUN";

    const std::string viaVeth = "marked-goes-to-veth-" + ip;
    ASSERT_TRUE(test::udpSend(marked, ip, 5353, viaVeth)) << strerror(errno);
    EXPECT_TRUE(test::waitForPayload(server, viaVeth, 2000, false))
        << "marked packet did not reach the server through h0";
    // Neither packet went the other way.
    EXPECT_FALSE(test::waitForPayload(server, viaTun, 200, false)) << "leak around the tunnel";
    EXPECT_FALSE(test::waitForPayload(world_.tun->fd(), viaVeth, 200, true)) << "routing loop";
    close(plain);
    close(marked);
    close(server);
  }
}

TEST_F(RouteTest, KeepLanReachesDirectlyConnectedPeer) {
  RouteManager mgr(options());
  Status st = mgr.apply();
  ASSERT_TRUE(st.ok()) << st.error().toString();
  uint16_t port = 8080;
  for (const std::string ip : {"198.18.5.2", "2001:db8:5::2"}) {
    SCOPED_TRACE(ip);
    const int family = ip.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    int listener = test::tcpListener(world_.lan->socketIn(family, SOCK_STREAM), ip, port);
    ASSERT_GE(listener, 0) << strerror(errno);
    int client = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);  // unmarked
    std::string err;
    EXPECT_TRUE(test::tcpExchange(client, ip, port, listener, &err)) << err;
    EXPECT_NE(routeGet(ip).find("dev h1"), std::string::npos) << routeGet(ip);
    close(client);
    close(listener);
  }

  // Control: without keep_lan the same peer would be captured.
  ASSERT_TRUE(mgr.restore().ok());
  RouteOptions o = options();
  o.keepLan = false;
  RouteManager noLan(o);
  st = noLan.apply();
  ASSERT_TRUE(st.ok()) << st.error().toString();
  EXPECT_NE(routeGet("198.18.5.2").find("dev vt-tun0"), std::string::npos);
  EXPECT_NE(routeGet("2001:db8:5::2").find("dev vt-tun0"), std::string::npos);
}

TEST_F(RouteTest, InboundServiceAnswersThroughRealInterface) {
  RouteManager mgr(options());
  Status st = mgr.apply();
  ASSERT_TRUE(st.ok()) << st.error().toString();
  // A client "on the internet" (gw's 198.18.200.1, beyond the default route)
  // connects to a service on the host's real address.
  struct Case {
    std::string service, client;
  };
  for (const Case& c :
       {Case{"198.18.1.1", "198.18.200.1"}, Case{"2001:db8:1::1", "2001:db8:200::1"}}) {
    SCOPED_TRACE(c.service);
    const int family = c.service.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    int listener =
        test::tcpListener(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), c.service, 8081);
    ASSERT_GE(listener, 0) << strerror(errno);
    int client = world_.gw->socketIn(family, SOCK_STREAM);
    socklen_t len;
    sockaddr_storage a = test::makeAddr(c.client, 0, &len);
    ASSERT_EQ(bind(client, reinterpret_cast<sockaddr*>(&a), len), 0) << strerror(errno);
    std::string err;
    EXPECT_TRUE(test::tcpExchange(client, c.service, 8081, listener, &err)) << err;
    close(client);
    close(listener);
    // Control: the very same reply without the inbound rule would be captured.
    EXPECT_NE(routeGet(c.client + " from " + c.service).find("dev h0"), std::string::npos);
  }
  ASSERT_TRUE(mgr.restore().ok());
  RouteOptions o = options();
  o.bypassInbound = false;
  RouteManager noInbound(o);
  st = noInbound.apply();
  ASSERT_TRUE(st.ok()) << st.error().toString();
  EXPECT_NE(routeGet("198.18.200.1 from 198.18.1.1").find("dev vt-tun0"), std::string::npos);
  int listener =
      test::tcpListener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "198.18.1.1", 8082);
  int client = world_.gw->socketIn(AF_INET, SOCK_STREAM);
  socklen_t len;
  sockaddr_storage a = test::makeAddr("198.18.200.1", 0, &len);
  ASSERT_EQ(bind(client, reinterpret_cast<sockaddr*>(&a), len), 0) << strerror(errno);
  std::string err;
  EXPECT_FALSE(test::tcpExchange(client, "198.18.1.1", 8082, listener, &err))
      << "the SYN-ACK should have been captured by the TUN";
  close(client);
  close(listener);
}

TEST_F(RouteTest, RestoreLeavesEverythingAsBefore) {
  const std::string before = snapshot();
  {
    RouteManager mgr(options());
    Status st = mgr.apply();
    ASSERT_TRUE(st.ok()) << st.error().toString();
    EXPECT_NE(snapshot(), before);
    st = mgr.restore();
    ASSERT_TRUE(st.ok()) << st.error().toString();
    EXPECT_EQ(snapshot(), before);
    EXPECT_FALSE(fileExists(world_.stateFile));
    EXPECT_TRUE(mgr.restore().ok()) << "restore must be idempotent";
    ASSERT_TRUE(mgr.apply().ok());
    EXPECT_NE(snapshot(), before);
  }  // the destructor restores
  EXPECT_EQ(snapshot(), before);
  EXPECT_FALSE(fileExists(world_.stateFile));
}

// A network change: the `from <host address>` rules follow the addresses
// (new ones in, gone ones out, in the state file too); nothing else moves.
TEST_F(RouteTest, RefreshFollowsTheHostAddresses) {
  const std::string before = snapshot();
  RouteManager mgr(options());
  ASSERT_TRUE(mgr.apply().ok());
  auto unchanged = mgr.refresh();
  ASSERT_TRUE(unchanged.ok()) << unchanged.error().toString();
  EXPECT_EQ(unchanged.value(), 0u);
  ASSERT_EQ(system("ip addr add 198.18.77.1/32 dev h0"), 0);
  auto added = mgr.refresh();
  ASSERT_TRUE(added.ok()) << added.error().toString();
  EXPECT_EQ(added.value(), 1u);
  EXPECT_EQ(count(run("ip rule show"), "from 198.18.77.1 lookup main"), 1u) << run("ip rule show");
  std::string state = run("cat " + world_.stateFile);
  EXPECT_NE(state.find("198.18.77.1"), std::string::npos) << state;
  ASSERT_EQ(system("ip addr del 198.18.77.1/32 dev h0"), 0);
  auto removed = mgr.refresh();
  ASSERT_TRUE(removed.ok()) << removed.error().toString();
  EXPECT_EQ(removed.value(), 1u);
  EXPECT_EQ(count(run("ip rule show"), "198.18.77.1"), 0u);
  EXPECT_EQ(run("cat " + world_.stateFile).find("198.18.77.1"), std::string::npos);
  ASSERT_TRUE(mgr.restore().ok());
  EXPECT_EQ(snapshot(), before);
}

TEST_F(RouteTest, RecoverAfterCrashedRun) {
  const std::string before = snapshot();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    RouteManager mgr(options());
    _exit(mgr.apply().ok() ? 0 : 1);  // "crash": no restore
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_NE(snapshot(), before);
  ASSERT_TRUE(fileExists(world_.stateFile));

  Status st = RouteManager::recover(world_.stateFile);
  ASSERT_TRUE(st.ok()) << st.error().toString();
  EXPECT_EQ(snapshot(), before);
  EXPECT_FALSE(fileExists(world_.stateFile));
  EXPECT_TRUE(RouteManager::recover(world_.stateFile).ok()) << "missing file is fine";
}

TEST_F(RouteTest, ApplyTwiceWithoutRestore) {
  const std::string before = snapshot();
  {
    RouteManager first(options());
    ASSERT_TRUE(first.apply().ok());
    ASSERT_TRUE(first.apply().ok()) << "same object twice";
    first.abandonForTest();  // crash: state file left behind
    RouteManager second(options());
    Status st = second.apply();  // recovers the leftovers first
    ASSERT_TRUE(st.ok()) << st.error().toString();
    EXPECT_EQ(count(run("ip rule show"), "lookup 2022"), 1u);
    EXPECT_EQ(count(run("ip -6 rule show"), "lookup 2022"), 1u);

    // Leftovers whose state file is lost: taken over, then removed.
    second.abandonForTest();
    ASSERT_EQ(unlink(world_.stateFile.c_str()), 0);
    RouteManager third(options());
    st = third.apply();
    ASSERT_TRUE(st.ok()) << st.error().toString();
    EXPECT_EQ(count(run("ip rule show"), "lookup 2022"), 1u);
  }
  EXPECT_EQ(snapshot(), before);
}

// IPv6 is always routed into the TUN with the TUN's address as preferred
// source. (An earlier `unreachable ::/0` for "IPv6 not carried" leaked: on
// an unreachable route the kernel picks a real source address itself, and
// the inbound rule `from <that address> lookup main` then sent the
// connection out the real interface. The client refuses IPv6 inside the
// TUN instead.)
TEST_F(RouteTest, Ipv6CapturedWithTunSource) {
  const std::string before = snapshot();
  RouteManager mgr(options());
  Status st = mgr.apply();
  ASSERT_TRUE(st.ok()) << st.error().toString();
  std::string r = routeGet("2001:db8:200::1");
  EXPECT_NE(r.find("dev vt-tun0"), std::string::npos) << r;
  EXPECT_NE(r.find("src 2001:db8:ff::1"), std::string::npos) << r;
  EXPECT_EQ(r.find("dev h0"), std::string::npos) << "IPv6 leaked: " << r;
  EXPECT_NE(routeGet("2001:db8:200::1 mark 0x1f0").find("dev h0"), std::string::npos);
  EXPECT_NE(routeGet("2001:db8:5::2").find("dev h1"), std::string::npos) << "LAN still works";
  st = mgr.restore();
  ASSERT_TRUE(st.ok()) << st.error().toString();
  EXPECT_EQ(snapshot(), before);
}

TEST_F(RouteTest, ErrorsNameTheProblem) {
  RouteOptions o = options();
  o.tunName = "vt-nope0";
  Status st = RouteManager(o).apply();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("vt-nope0"), std::string::npos) << st.error().message;

  o = options();
  o.captureV4 = {"::/0"};
  st = RouteManager(o).apply();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("not IPv4"), std::string::npos) << st.error().message;
  EXPECT_FALSE(fileExists(world_.stateFile)) << "nothing may change on a config error";

  // Corrupt state file: recover refuses, names file and line.
  ASSERT_EQ(run("mkdir -p $(dirname " + world_.stateFile + ")"), "");
  std::ofstream(world_.stateFile) << "# header\nrule 4 pref 9000 lookup 254\nroute 9 x\n";
  st = RouteManager::recover(world_.stateFile);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(world_.stateFile + ":3"), std::string::npos)
      << st.error().message;
  ASSERT_EQ(unlink(world_.stateFile.c_str()), 0);
  o = options();
  o.table = 254;
  st = RouteManager(o).apply();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("reserved"), std::string::npos) << st.error().message;

  // A netlink failure names the operation, the object and the errno text,
  // and what was added before it is rolled back.
  const std::string before = snapshot();
  o = options();
  o.tunIfindex = 99999;
  o.bypassInbound = false;
  st = RouteManager(o).apply();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("RTM_NEWROUTE route 0.0.0.0/0 dev #99999 table 2022 (IPv4): "
                                    "No such device"),
            std::string::npos)
      << st.error().message;
  EXPECT_EQ(snapshot(), before);
  EXPECT_FALSE(fileExists(world_.stateFile));

  o = options();
  o.tunIfindex = 99999;  // exists nowhere, so it has no addresses
  st = RouteManager(o).apply();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("TUN has no IPv4 address"), std::string::npos)
      << st.error().message;
}

// Gateway mode: traffic forwarded from h1 (the LAN) goes into the TUN, the
// forwarding sysctls are on while applied and back at their old values after
// restore() and after a crashed run's recover().
TEST_F(RouteTest, GatewayRulesAndSysctlsAreRestored) {
  auto sysctls = [] {
    return run("sysctl -n net.ipv4.ip_forward net.ipv6.conf.all.forwarding "
               "net.ipv4.conf.vt-tun0.rp_filter");
  };
  ASSERT_EQ(run("sysctl -qw net.ipv4.conf.vt-tun0.rp_filter=1"), "");
  const std::string before = snapshot();
  const std::string sysBefore = sysctls();
  ASSERT_EQ(sysBefore, "0\n0\n1\n") << "the world must start without forwarding";
  RouteOptions o = options();
  o.gatewayInterfaces = {"h1"};
  {
    RouteManager mgr(o);
    Status st = mgr.apply();
    ASSERT_TRUE(st.ok()) << st.error().toString();
    EXPECT_EQ(count(run("ip rule show"), "9001:\tfrom all iif h1 lookup 2022"), 1u) << run("ip rule");
    EXPECT_EQ(count(run("ip -6 rule show"), "iif h1 lookup 2022"), 1u);
    EXPECT_EQ(sysctls(), "1\n1\n2\n");
    // The LAN's packets to the internet go into the TUN; its traffic to the
    // host and to other directly connected networks does not.
    EXPECT_NE(routeGet("198.18.200.1 from 198.18.5.2 iif h1").find("dev vt-tun0"),
              std::string::npos)
        << routeGet("198.18.200.1 from 198.18.5.2 iif h1");
    EXPECT_NE(routeGet("2001:db8:200::1 from 2001:db8:5::2 iif h1").find("dev vt-tun0"),
              std::string::npos);
    // Bypassed ranges too: the iif rule comes before the bypass rules.
    EXPECT_NE(routeGet("10.1.2.3 from 198.18.5.2 iif h1").find("dev vt-tun0"), std::string::npos)
        << routeGet("10.1.2.3 from 198.18.5.2 iif h1");
    EXPECT_NE(routeGet("198.18.1.2 from 198.18.5.2 iif h1").find("dev h0"), std::string::npos);
    EXPECT_NE(routeGet("198.18.5.1 from 198.18.5.2 iif h1").find("local"), std::string::npos);
    std::ifstream in(world_.stateFile);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("iifrule 4 pref 9001 iif h1 lookup 2022\n"), std::string::npos) << text;
    EXPECT_NE(text.find("sysctl net/ipv4/ip_forward 0 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("sysctl net/ipv4/conf/vt-tun0/rp_filter 1 2\n"), std::string::npos) << text;
    st = mgr.restore();
    ASSERT_TRUE(st.ok()) << st.error().toString();
    EXPECT_EQ(snapshot(), before);
    EXPECT_EQ(sysctls(), sysBefore);
  }

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    RouteManager mgr(o);
    _exit(mgr.apply().ok() ? 0 : 1);  // "crash": no restore
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(sysctls(), "1\n1\n2\n");
  {
    // The next run recovers first, so the values it records are the
    // original ones, not the crashed run's.
    RouteManager again(o);
    Status st = again.apply();
    ASSERT_TRUE(st.ok()) << st.error().toString();
    std::ifstream in(world_.stateFile);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("sysctl net/ipv4/ip_forward 0 1\n"), std::string::npos) << text;
    EXPECT_EQ(count(run("ip rule show"), "iif h1"), 1u);
    again.abandonForTest();
  }
  Status st = RouteManager::recover(world_.stateFile);
  ASSERT_TRUE(st.ok()) << st.error().toString();
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(sysctls(), sysBefore);

  o.keepLan = false;
  st = RouteManager(o).apply();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("keepLan"), std::string::npos) << st.error().message;
}

TEST(RouteStateLine, GatewaySteps) {
  using Step = RouteManager::Step;
  for (const char* ok : {"iifrule 4 pref 9001 iif lan0 lookup 2022",
                         "iifrule 6 pref 9001 iif br-lan lookup 2022",
                         "sysctl net/ipv4/ip_forward 0 1", "sysctl net/ipv6/conf/all/forwarding 0 1",
                         "sysctl net/ipv4/conf/vt0/rp_filter 1 2"}) {
    Result<Step> s = Step::parseStateLine(ok);
    ASSERT_TRUE(s.ok()) << ok << ": " << s.error().message;
    EXPECT_EQ(s.value().toStateLine(), ok);
  }
  // Only the sysctls gateway mode changes may be written back.
  for (const char* bad : {"sysctl kernel/core_pattern x y", "sysctl net/ipv4/ip_forward 0",
                          "sysctl net/ipv4/conf/a/b/rp_filter 0 2", "iifrule 4 pref 9001 lookup 2022",
                          "iifrule 5 pref 9001 iif lan0 lookup 2022",
                          "iifrule 4 pref 9001 iif lan0 lookup 0"}) {
    EXPECT_FALSE(Step::parseStateLine(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace vt::platform
