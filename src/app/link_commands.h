// The vless:// share link commands (docs/client.md "Share links",
// docs/server.md "Share links"):
//   vless-tun import [--ignore K[,K...]] [-o FILE] 'vless://...'
//       writes a client config for the link (stdout, or FILE, never over
//       an existing one); an unsupported parameter is an error naming it.
//   vless-server links -c FILE [--host NAME] [--v0]
//       prints one link per [[users]] entry ("name<TAB>link").
// Both return the process's exit code: 0, 1 (the link or config is
// refused), 2 (usage).
#pragma once

namespace vt::app {

int importLinkCommand(int argc, char** argv);
int serverLinksCommand(int argc, char** argv);

}  // namespace vt::app
