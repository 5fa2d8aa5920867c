// The client's TLS options from its [server] config: one place for
// Client::create, the engine's start-up check and `vless-tun --check`.
#pragma once

#include "config/client_config.h"
#include "tls/tls_engine.h"

namespace vt::client {

inline tls::TlsOptions clientTlsOptions(const config::ClientServerConfig& s) {
  tls::TlsOptions o;
  o.role = tls::Role::kClient;
  o.server_name = s.sni;
  o.alpn = s.alpn;
  o.ca_file = s.ca_file;
  o.insecure = s.insecure;
  o.session_tickets = s.session_tickets;
  return o;
}

}  // namespace vt::client
