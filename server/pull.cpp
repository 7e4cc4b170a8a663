// pull_model (transfer.h).
#include <algorithm>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "server/json_writer.h"
#include "server/transfer.h"

namespace hearth::server {

namespace {

constexpr size_t kMaxManifest = size_t{4} << 20;
constexpr int64_t kMaxLayer = int64_t{1} << 42;  // 4 TiB: anything larger is a hostile manifest
constexpr const char* kManifestTypes =
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";

// GET the manifest, retrying transport errors and 5xx answers; the raw bytes.
Result<std::string> fetch_manifest(registry::Client& client, const ModelName& name, const std::atomic<bool>* cancel) {
  registry::Call c;
  c.method = "GET";
  c.url = client.path("manifests/" + name.tag);
  c.headers.emplace_back("Accept", kManifestTypes);
  c.max_body = kMaxManifest;
  registry::Reply r;
  // At most two more tries: a registry that never answers should be named within a minute
  // or two, not after the blob parts' six.
  for (int attempt = 0; attempt <= std::min(client.options().retries, 2); attempt++) {
    if (attempt > 0 && !registry::sleep_unless_cancelled(client.options().backoff_for(attempt), cancel))
      return Error{"cancelled"};
    if (registry::cancelled(cancel)) return Error{"cancelled"};
    r = client.send(c);
    // Only what may pass: a refused connection or a failed handshake fails at once.
    const bool retry = r.transient || r.status >= 500 || r.status == 429;
    if (!retry) break;
  }
  if (r.status == 404) return Error{"pull model manifest: file does not exist"};
  if (!r.ok()) return Error{"pull model manifest: " + (r.status == 0 ? r.error : describe(r))};
  return r.body;
}

}  // namespace

Status check_pulled_manifest(const Manifest& m) {
  for (const Layer* l : transfer_order(m)) {
    if (!Store::valid_digest(l->digest) || l->digest.rfind("sha256:", 0) != 0)
      return Error{"pull model manifest: invalid digest \"" + l->digest + "\""};
    if (l->size < 0 || l->size > kMaxLayer)
      return Error{"pull model manifest: layer " + l->digest + " has an invalid size " + std::to_string(l->size)};
  }
  return {};
}

namespace {

struct Pending {
  Layer layer;
  std::unique_ptr<Download> download;  // null: already in the store
};

// Waits for every download, reporting each layer's progress every 100 ms. The first layer
// that fails ends the wait with its error at once: the caller drops its handles, which
// leaves (and so stops) the other downloads, their partial data kept for a later pull.
Status wait_downloads(std::vector<Pending>& pending, const TransferProgress& progress, const std::atomic<bool>* cancel,
                      PullStats* stats) {
  std::vector<bool> reported(pending.size(), false);
  while (true) {
    bool all = true;
    for (size_t i = 0; i < pending.size(); i++) {
      Pending& p = pending[i];
      if (reported[i]) continue;
      const bool ended = !p.download || p.download->wait_for(0);
      if (ended && p.download && !p.download->result()) return p.download->result();
      const int64_t done = p.download ? p.download->completed() : p.layer.size;
      progress(layer_line("pulling", p.layer, ended ? p.layer.size : done));
      reported[i] = ended;
      all = all && ended;
    }
    if (all) break;
    if (registry::cancelled(cancel)) return Error{"cancelled"};
    for (Pending& p : pending)
      if (p.download && !p.download->wait_for(0)) {
        p.download->wait_for(100);
        break;
      }
  }
  for (Pending& p : pending) {
    if (!p.download) continue;
    if (stats) {
      stats->resumed += p.download->stats().resumed;
      stats->fetched += p.download->stats().fetched;
    }
    if (Status st = p.download->result(); !st) return st;
  }
  return {};
}

}  // namespace

std::vector<const Layer*> transfer_order(const Manifest& m) {
  std::vector<const Layer*> v;
  for (const Layer& l : m.layers) v.push_back(&l);
  v.push_back(&m.config);
  return v;
}

std::string status_line(std::string_view status) {
  JsonWriter w;
  w.begin_object().key("status").str(status).end_object();
  return w.text();
}

std::string layer_line(std::string_view verb, const Layer& l, int64_t completed) {
  JsonWriter w;
  w.begin_object().key("status").str(std::string(verb) + " " + l.digest.substr(7, 12)).key("digest").str(l.digest);
  if (l.size > 0) w.key("total").num(l.size);
  if (completed > 0) w.key("completed").num(completed);
  w.end_object();
  return w.text();
}

Status pull_model(Store& store, const ModelName& name, bool insecure, const registry::Options& opt,
                  const TransferProgress& progress, const std::atomic<bool>* cancel, PullStats* stats) {
  progress(status_line("pulling manifest"));
  registry::Client client(name, insecure, opt);
  auto raw = fetch_manifest(client, name, cancel);
  if (!raw) return Error{raw.message()};
  auto parsed = parse_manifest(raw.value());
  if (!parsed) return Error{"pull model manifest: " + parsed.message()};
  const Manifest& m = parsed.value();
  if (Status st = check_pulled_manifest(m); !st) return st;

  // Blobs present now stay until the manifest that needs them is written.
  Store::Pins pins(store);
  std::vector<Pending> pending;
  std::set<std::string> seen;
  for (const Layer* l : transfer_order(m)) {
    if (!seen.insert(l->digest).second) continue;
    pins.add(l->digest);
    Pending p{*l, nullptr};
    if (!store.has_blob(l->digest)) p.download = Download::start(store, name, insecure, opt, *l);
    pending.push_back(std::move(p));
  }
  Status st = wait_downloads(pending, progress, cancel, stats);
  if (!st) return st;
  progress(status_line("verifying sha256 digest"));

  progress(status_line("writing manifest"));
  ModelName target = name;  // a case variant of an existing name keeps its spelling
  std::vector<std::string> old;
  if (auto existing = store.find(name)) {
    target = existing.value().name;
    old.push_back(existing.value().config.digest);
    for (const Layer& l : existing.value().layers) old.push_back(l.digest);
  }
  if (Status w = store.write_manifest(target, raw.value()); !w) return w;
  pins.release();
  std::vector<std::string> unused;
  for (const std::string& d : old)
    if (!seen.count(d)) unused.push_back(d);
  if (!unused.empty()) {
    progress(status_line("removing unused layers"));
    store.drop_unreferenced(unused);
  }
  progress(status_line("success"));
  return {};
}

}  // namespace hearth::server
