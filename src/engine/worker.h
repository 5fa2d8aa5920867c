// Worker: one loop thread of the client core (tun.workers) with its own
// Client (NetStack, server connections) and TUN queue, and the mailbox
// other threads reach it through. docs/netstack.md "Using every core".
//
// Threads: a Worker's client, pump and loop are only touched on its loop
// thread, except while it is parked (parkWorkers) or after its thread was
// joined. Its Inbox is the only part other threads use.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/client.h"
#include "client/tun_pump.h"
#include "core/log.h"
#include "event/loop.h"
#include "netstack/flow_key.h"

struct uv_async_s;

namespace vt::engine {

// A worker's mailbox for other threads: datagrams and raw packets handed
// over by other workers (bounded: a full inbox drops, and the sender counts
// it), and the engine's requests. Guarded by `mu`.
struct Inbox {
  struct Item {
    bool raw = false;  // a raw IP packet for CmdIP, else a UDP datagram
    netstack::UdpEndpoint app, dst;
    std::vector<uint8_t> bytes;
  };
  static constexpr size_t kMaxItems = 2048;
  static constexpr size_t kMaxBytes = 4 << 20;

  std::mutex mu;
  std::condition_variable cv;
  std::vector<Item> items;
  size_t bytes = 0;
  bool stop = false;    // worker 1..n-1: stop the client and end the loop
  bool park = false;    // the engine reads this worker's state: wait in the callback
  bool parked = false;  // waiting so
  bool exited = false;  // the worker's loop has ended
  std::optional<std::vector<std::string>> netChange;  // the usable local addresses
  std::vector<uint64_t> closeFlows;  // the operator's `close ID` (a few at most)
  uv_async_s* async = nullptr;  // null before start and once closed

  // Any thread. False: full, or the worker is gone.
  bool push(Item&& item);
  void wake();  // with mu held
};

// Where each app endpoint's UDP session lives (full cone: one session, so
// one source address at the server, per endpoint). The first worker to
// need a session for an endpoint that has none claims it, so a flow the
// kernel keeps on one TUN queue is served where it is read and never
// crosses to another worker; datagrams of the endpoint read on other
// queues are handed to that home. The entry goes when the home's session
// closes. Bounded by the workers' live sessions. Any thread.
class UdpHomes {
 public:
  // The endpoint's home; `self` becomes it when it has none.
  size_t claim(const netstack::UdpEndpoint& app, size_t self);
  // `self`'s session for `app` closed: the endpoint has no home until the
  // next claim (unless another worker's claim already replaced it).
  void release(const netstack::UdpEndpoint& app, size_t self);
  size_t size();

 private:
  std::mutex mu_;
  std::unordered_map<netstack::UdpEndpoint, size_t, netstack::UdpEndpointHash> homes_;
};

// Worker 0 runs on the run() thread with the engine's loop, client and
// pump; workers 1..n-1 own theirs and a std::thread.
struct Worker {
  size_t index = 0;
  std::unique_ptr<event::Loop> ownLoop;  // declared first: destroyed last
  std::unique_ptr<client::Client> ownClient;
  std::unique_ptr<client::TunPump> ownPump;
  event::Loop* loop = nullptr;
  client::Client* client = nullptr;
  client::TunPump* pump = nullptr;
  Inbox inbox;
  std::thread thread;
  bool stopped = false;  // loop thread

  // Before the loop runs: the inbox's uv_async on `loop`.
  void openInbox();
  void closeInbox();  // the loop thread (or after it was joined)
  // Any thread.
  void requestStop();
  void requestNetworkChange(const std::vector<std::string>& addresses);
  // Closes the flow with that id here (Client::closeFlow).
  void requestCloseFlow(uint64_t id);
  // Workers 1..n-1: runs `loop` on a new thread (logging through `log`);
  // `exited` is set when it ends.
  void startThread(const LogSink* log);
  ~Worker();

 private:
  void drain();      // the loop thread: what other threads queued
  void stopHere();   // the loop thread: reset the flows, end the loop
};

using Workers = std::vector<std::unique_ptr<Worker>>;

// Workers 1..n-1 wait in their inbox callback (outside lwIP) while the
// caller reads their state, or go on again. A worker whose loop has ended
// counts as parked. Never from inside a NetStack callback: a worker may
// be waiting for the lwIP lock.
void parkWorkers(const Workers& workers, bool park);

// Worker i's client hooks when there are several: UDP datagrams go to
// their app endpoint's home worker (`homes`), CmdIP packets to worker 0.
void addHandOverHooks(client::ClientHooks& hooks, const Workers& workers, UdpHomes& homes,
                      size_t i);

}  // namespace vt::engine
