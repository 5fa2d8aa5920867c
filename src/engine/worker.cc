#include "engine/worker.h"

#include <uv.h>

#include <utility>

#include "buffer/buffer_chain.h"
#include "core/log.h"

namespace vt::engine {

bool Inbox::push(Item&& item) {
  std::lock_guard<std::mutex> lk(mu);
  if (async == nullptr || items.size() >= kMaxItems || bytes + item.bytes.size() > kMaxBytes) {
    return false;
  }
  bytes += item.bytes.size();
  items.push_back(std::move(item));
  uv_async_send(async);
  return true;
}

void Inbox::wake() {
  if (async != nullptr) uv_async_send(async);
}

size_t UdpHomes::claim(const netstack::UdpEndpoint& app, size_t self) {
  std::lock_guard<std::mutex> lk(mu_);
  return homes_.try_emplace(app, self).first->second;
}

void UdpHomes::release(const netstack::UdpEndpoint& app, size_t self) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = homes_.find(app);
  if (it != homes_.end() && it->second == self) homes_.erase(it);
}

size_t UdpHomes::size() {
  std::lock_guard<std::mutex> lk(mu_);
  return homes_.size();
}

void Worker::openInbox() {
  auto* a = new uv_async_t;
  a->data = this;
  uv_async_init(loop->raw(), a, [](uv_async_t* h) { static_cast<Worker*>(h->data)->drain(); });
  std::lock_guard<std::mutex> lk(inbox.mu);
  inbox.async = a;
}

void Worker::closeInbox() {
  uv_async_t* a = nullptr;
  {
    std::lock_guard<std::mutex> lk(inbox.mu);
    a = std::exchange(inbox.async, nullptr);
  }
  if (a != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(a),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  }
}

void Worker::requestStop() {
  std::lock_guard<std::mutex> lk(inbox.mu);
  inbox.stop = true;
  inbox.wake();
}

void Worker::requestNetworkChange(const std::vector<std::string>& addresses) {
  std::lock_guard<std::mutex> lk(inbox.mu);
  inbox.netChange = addresses;
  inbox.wake();
}

void Worker::requestCloseFlow(uint64_t id) {
  std::lock_guard<std::mutex> lk(inbox.mu);
  if (inbox.closeFlows.size() < 64) inbox.closeFlows.push_back(id);
  inbox.wake();
}

void Worker::startThread(const LogSink* log) {
  thread = std::thread([this, log] {
    LogScope scope(log);
    loop->run();
    flushFlowLog();  // what this thread's flow-line limit held back
    std::lock_guard<std::mutex> lk(inbox.mu);
    inbox.exited = true;
    inbox.cv.notify_all();
  });
}

Worker::~Worker() {
  if (thread.joinable()) thread.join();
  closeInbox();
  if (ownClient) ownClient->setPacketSink(nullptr);
  ownPump.reset();
  ownClient.reset();
  ownLoop.reset();
}

void Worker::drain() {
  std::vector<Inbox::Item> items;
  bool stop = false;
  std::optional<std::vector<std::string>> net;
  std::vector<uint64_t> closeFlows;
  {
    std::unique_lock<std::mutex> lk(inbox.mu);
    if (inbox.park) {
      inbox.parked = true;
      inbox.cv.notify_all();
      inbox.cv.wait(lk, [this] { return !inbox.park; });
      inbox.parked = false;
    }
    items.swap(inbox.items);
    inbox.bytes = 0;
    stop = std::exchange(inbox.stop, false);
    net = std::exchange(inbox.netChange, std::nullopt);
    closeFlows.swap(inbox.closeFlows);
  }
  if (stopped) return;
  for (Inbox::Item& it : items) {
    if (it.raw) {
      client->otherPacketFromWorker(it.bytes.data(), it.bytes.size());
    } else {
      BufferChain payload;
      payload.append(it.bytes);
      client->udpFromWorker(it.app, it.dst, std::move(payload));
    }
  }
  if (net) client->networkChanged(&*net);
  for (uint64_t id : closeFlows) client->closeFlow(id);
  if (stop && index != 0) stopHere();
}

void Worker::stopHere() {
  stopped = true;
  client->stop();  // resets its flows: the RSTs go out through its queue now
  if (pump) pump->stop();
  closeInbox();
  event::Loop* l = loop;
  l->post([l] { l->stop(); });
}

void parkWorkers(const Workers& workers, bool park) {
  for (size_t i = 1; i < workers.size(); ++i) {
    Worker& w = *workers[i];
    std::lock_guard<std::mutex> lk(w.inbox.mu);
    w.inbox.park = park;
    if (park) {
      w.inbox.wake();
    } else {
      w.inbox.cv.notify_all();
    }
  }
  if (!park) return;
  for (size_t i = 1; i < workers.size(); ++i) {
    Worker& w = *workers[i];
    std::unique_lock<std::mutex> lk(w.inbox.mu);
    // A worker that has closed its inbox is ending its loop: exited soon.
    w.inbox.cv.wait(lk, [&w] { return w.inbox.parked || w.inbox.exited; });
  }
}

void addHandOverHooks(client::ClientHooks& hooks, const Workers& workers, UdpHomes& homes,
                      size_t i) {
  const Workers* all = &workers;
  UdpHomes* h = &homes;
  hooks.udpElsewhere = [all, h, i](const netstack::UdpEndpoint& app,
                                   const netstack::UdpEndpoint& dst, const BufferChain& payload) {
    size_t home = h->claim(app, i);
    if (home == i) return false;
    Inbox::Item item{false, app, dst, payload.toVector()};
    (*all)[i]->client->countHandOver(!(*all)[home]->inbox.push(std::move(item)));
    return true;
  };
  hooks.udpSessionClosed = [h, i](const netstack::UdpEndpoint& app) { h->release(app, i); };
  if (i != 0) {
    hooks.otherPacketElsewhere = [all, i](const uint8_t* packet, size_t len) {
      Inbox::Item item{true, {}, {}, std::vector<uint8_t>(packet, packet + len)};
      (*all)[i]->client->countHandOver(!(*all)[0]->inbox.push(std::move(item)));
      return true;
    };
  }
}

}  // namespace vt::engine
