// hearth serve: the Ollama-compatible HTTP server on OLLAMA_HOST (127.0.0.1:11434).
#include <csignal>
#include <cstdio>
#include <thread>

#include "server/api.h"
#include "tools/commands.h"

namespace hearth::cli {

int cmd_serve(const Args& args) {
  if (!args.empty()) {
    std::fputs("usage: hearth serve\n"
               "Serves the Ollama API. Environment: OLLAMA_HOST or HEARTH_HOST (default 127.0.0.1:11434),\n"
               "OLLAMA_MODELS (default ~/.ollama/models), HEARTH_API_KEY (require a bearer token).\n",
               args[0] == "--help" || args[0] == "-h" ? stdout : stderr);
    return args[0] == "--help" || args[0] == "-h" ? 0 : 2;
  }
  auto opt = server::serve_options_from_env();
  if (!opt) {
    std::fprintf(stderr, "hearth serve: %s\n", opt.message().c_str());
    return 2;
  }
  // SIGINT/SIGTERM are taken by a watcher thread that stops the server cleanly.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  server::ApiServer srv(opt.value());
  auto port = srv.bind();
  if (!port) {
    std::fprintf(stderr, "hearth serve: %s\n", port.message().c_str());
    return 1;
  }
  std::fprintf(stderr, "hearth serve: listening on %s:%d, models in %s\n", opt.value().host.c_str(), port.value(),
               opt.value().models.c_str());
  std::thread watcher([&] {
    int sig = 0;
    sigwait(&set, &sig);
    std::fprintf(stderr, "hearth serve: signal %d, shutting down\n", sig);
    srv.stop();
  });
  srv.run();
  // If run() returned for another reason, wake the watcher so it can be joined.
  pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  return 0;
}

}  // namespace hearth::cli
