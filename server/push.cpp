// push_model (transfer.h).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "server/transfer.h"

namespace hearth::server {

namespace {

constexpr const char* kManifestType = "application/vnd.docker.distribution.manifest.v2+json";

// Where an upload continues: the Location (or Docker-Upload-Location) of an answer.
std::string upload_location(const registry::Reply& r) {
  std::string loc = r.header("Location");
  return loc.empty() ? r.header("Docker-Upload-Location") : loc;
}

std::string with_query(const std::string& url, const std::string& kv) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + kv;
}

class BlobPush {
 public:
  BlobPush(registry::Client& client, const Store& store, const ModelName& name, const Layer& layer,
           const TransferProgress& progress, const std::atomic<bool>* cancel, PushStats& stats)
      : client_(client), store_(store), name_(name), layer_(layer), progress_(progress), cancel_(cancel), stats_(stats) {}

  // HEAD, mount or upload, with retries of the whole upload after a failure.
  Status run() {
    progress_(layer_line("pushing", layer_, 0));
    std::string last;
    for (int attempt = 0; attempt <= client_.options().retries; attempt++) {
      if (attempt > 0 && !registry::sleep_unless_cancelled(client_.options().backoff_for(attempt), cancel_))
        return Error{"cancelled"};
      registry::Reply r = try_once();
      if (r.ok()) {
        progress_(layer_line("pushing", layer_, layer_.size));
        return {};
      }
      last = r.status == 0 ? r.error : describe(r);
      if (r.error == "cancelled" || registry::cancelled(cancel_)) return Error{"cancelled"};
      const bool retry = r.transient || r.status >= 500 || r.status == 408 || r.status == 429;
      if (!retry) break;
    }
    return Error{"pushing " + layer_.digest.substr(7, 12) + ": " + last};
  }

 private:
  registry::Reply send(const std::string& method, const std::string& url) {
    registry::Call c;
    c.method = method;
    c.url = url;
    return client_.send(c);
  }

  registry::Reply try_once() {
    registry::Reply head = send("HEAD", client_.path("blobs/" + layer_.digest));
    if (head.status == 200) {
      stats_.present++;
      return head;
    }
    if (head.status != 404) return head;
    registry::Reply start = mount_or_start();
    if (start.status == 201) {  // mounted from another repository
      stats_.mounted++;
      return start;
    }
    if (start.status != 202) return start.status == 0 || !start.ok() ? start : unexpected(start, "starting an upload");
    registry::Reply done = upload(upload_location(start));
    if (done.ok()) stats_.uploaded++;
    return done;
  }

  // POST …/blobs/uploads/, with ?mount=&from= when the layer names another repository of
  // this registry.
  registry::Reply mount_or_start() {
    std::string url = client_.path("blobs/uploads/");
    const ModelName from = ModelName::parse(layer_.from);
    if (!layer_.from.empty() && from.valid() && from.host == name_.host &&
        (from.ns + "/" + from.model) != client_.repository())
      url += "?mount=" + layer_.digest + "&from=" + from.ns + "/" + from.model;
    return send("POST", url);
  }

  // PATCH the blob in chunks, then PUT ?digest= to finish.
  registry::Reply upload(std::string location) {
    const std::filesystem::path path = store_.blob_path(layer_.digest);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("reading the blob " + layer_.digest + ": " + std::strerror(errno));
    registry::Reply r;
    const uint64_t size = static_cast<uint64_t>(layer_.size), chunk = std::max<uint64_t>(client_.options().chunk, 1);
    auto last_report = std::chrono::steady_clock::now();
    for (uint64_t off = 0; off < size; off += chunk) {
      if (location.empty()) {
        r = fail("the registry gave no upload location");
        break;
      }
      registry::Call c;
      c.method = "PATCH";
      c.url = location;
      c.fd = fd;
      c.offset = off;
      c.length = std::min(chunk, size - off);
      c.content_type = "application/octet-stream";
      c.headers.emplace_back("Content-Range", std::to_string(off) + "-" + std::to_string(off + c.length - 1));
      c.sent = [&](uint64_t n) {
        if (std::chrono::steady_clock::now() - last_report < std::chrono::milliseconds(100)) return;
        last_report = std::chrono::steady_clock::now();
        progress_(layer_line("pushing", layer_, static_cast<int64_t>(off + n)));
      };
      r = client_.send(c);
      if (r.status != 202) break;
      if (registry::cancelled(cancel_)) {
        r = fail("cancelled");
        break;
      }
      location = upload_location(r);
    }
    ::close(fd);
    if (size > 0 && r.status != 202) return r.status == 0 || !r.ok() ? r : unexpected(r, "uploading");
    registry::Reply done = send("PUT", with_query(location, "digest=" + layer_.digest));
    return done.status == 201 || !done.ok() ? done : unexpected(done, "finishing the upload");
  }

  static registry::Reply fail(std::string why) {
    registry::Reply r;
    r.error = std::move(why);
    return r;
  }
  static registry::Reply unexpected(const registry::Reply& r, const std::string& what) {
    return fail("the registry answered " + std::to_string(r.status) + " when " + what);
  }

  registry::Client& client_;
  const Store& store_;
  const ModelName& name_;
  const Layer& layer_;
  const TransferProgress& progress_;
  const std::atomic<bool>* cancel_;
  PushStats& stats_;
};

}  // namespace

Status push_model(Store& store, const ModelName& name, bool insecure, const registry::Options& opt,
                  const TransferProgress& progress, const std::atomic<bool>* cancel, PushStats* stats) {
  PushStats local;
  PushStats& counts = stats ? *stats : local;
  progress(status_line("retrieving manifest"));
  auto found = store.find(name);
  if (!found) {
    progress(status_line("couldn't retrieve manifest"));
    return Error{"model \"" + name.shortest() + "\" not found"};
  }
  const Manifest& m = found.value();
  registry::Client client(name, insecure, opt);
  for (const Layer* l : transfer_order(m)) {
    if (!store.has_blob(l->digest)) return Error{"the blob " + l->digest + " of " + name.shortest() + " is missing from the store"};
    if (Status st = BlobPush(client, store, name, *l, progress, cancel, counts).run(); !st) return st;
  }
  progress(status_line("pushing manifest"));
  registry::Call c;
  c.method = "PUT";
  c.url = client.path("manifests/" + name.tag);
  c.body = m.raw;
  c.content_type = kManifestType;
  registry::Reply r = client.send(c);
  if (!r.ok()) return Error{"pushing manifest: " + (r.status == 0 ? r.error : describe(r))};
  progress(status_line("success"));
  return {};
}

}  // namespace hearth::server
