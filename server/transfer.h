// Pulling and pushing models against an OCI distribution registry (/api/pull, /api/push,
// ../shared/reference/ollama-api.md §5.10, §5.11, §8), reporting progress as Ollama's
// status objects.
//
// Pull: the manifest (Docker v2; at most 4 MiB, every digest checked), then every layer and
// the config the store lacks, downloaded concurrently (download.h), then the manifest,
// byte for byte as the registry sent it — written last, so a failed or cancelled pull
// leaves the store as it was (plus resumable partial downloads).
// Push: per layer and the config, HEAD (present: skipped), a cross-repository mount when the
// layer names another repository of the same registry, else a chunked upload (POST, PATCH
// with Content-Range, PUT ?digest=); then the manifest.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/result.h"
#include "server/download.h"
#include "server/registry_client.h"
#include "server/store.h"

namespace hearth::server {

// One line of progress, as JSON (without the newline).
using TransferProgress = std::function<void(const std::string& json)>;

struct PullStats {
  uint64_t resumed = 0, fetched = 0;  // summed over the blobs downloaded
};

struct PushStats {
  int present = 0, mounted = 0, uploaded = 0;  // blobs the registry had, mounted, received
};

// `cancel` (may be null) stops the transfer; the result is then Error "cancelled".
Status pull_model(Store& store, const ModelName& name, bool insecure, const registry::Options& opt,
                  const TransferProgress& progress, const std::atomic<bool>* cancel, PullStats* stats = nullptr);
Status push_model(Store& store, const ModelName& name, bool insecure, const registry::Options& opt,
                  const TransferProgress& progress, const std::atomic<bool>* cancel, PushStats* stats = nullptr);

// A pulled manifest's checks: every digest "sha256:<64 hex>" (no path tricks), every size
// between 0 and 4 TiB; the error is the client's message.
Status check_pulled_manifest(const Manifest& m);
// The layers, then the config (Ollama's order).
std::vector<const Layer*> transfer_order(const Manifest& m);
// {"status": s}
std::string status_line(std::string_view status);
// {"status":"<verb> <12 hex>","digest":…,"total":…,"completed":…} (zeros left out, as Ollama).
std::string layer_line(std::string_view verb, const Layer& l, int64_t completed);

}  // namespace hearth::server
