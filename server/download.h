// Downloading one blob from a registry into the store: ranged parts of clamp(size/64,
// 16 MiB, 256 MiB) fetched by up to 16 connections at once in file order, each retried with
// backoff after an error or a stall, resumable, and SHA-256 verified before the blob is
// published. (Ollama fetches at most 16 parts of 100 MB–1 GB all at once; then the bytes
// arrive everywhere at the same time and the hash, which must run in order, can only
// start on most of them after the last one came. Smaller parts taken in order keep the
// same 16 connections busy and let the hash follow the download.)
//
// Partial data never sits under blobs/: it is written to <store>/partial/sha256-<hex>
// (flock'ed while a process downloads it) with its parts' progress in sha256-<hex>.json,
// kept after a failure, a cancel or a crash so that the next pull — by this server or
// after a restart — resumes from where the parts stopped. The SHA-256 follows the
// download over the bytes that are contiguous from the start, so verifying costs little
// after the last byte. A verified file is renamed into blobs/ atomically; a mismatch
// deletes the download.
//
// Pulls of the same blob into the same store at the same time share one download: every
// waiter sees its progress; it is cancelled only when the last waiter cancels.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "gguf/result.h"
#include "server/registry_client.h"
#include "server/store.h"

namespace hearth::server {

struct DownloadStats {
  uint64_t resumed = 0;  // bytes already on disk from an earlier, interrupted download
  uint64_t fetched = 0;  // bytes received from the registry this time
};

// A download in progress (shared by every pull that waits for the same blob). Each
// waiter holds its own handle.
class Download {
 public:
  // Starts (or joins) the download of `layer` from the registry of `name` into `store`.
  static std::unique_ptr<Download> start(const Store& store, const ModelName& name, bool insecure,
                                         const registry::Options& opt, const Layer& layer);
  ~Download();  // leaves
  // Bytes of the blob on disk so far (resumed + fetched).
  int64_t completed() const;
  // Waits up to `ms` for the end; true once it has ended.
  bool wait_for(int ms);
  // After the end: the outcome and what was transferred.
  Status result() const;
  DownloadStats stats() const;
  // This waiter gives up; the download stops when no waiter is left.
  void leave();
  // Waits up to `ms` until no download is running in this process (at shutdown, after
  // every waiter has left); true when none is.
  static bool wait_idle(int ms);

  struct Job;  // the shared state the transfer thread runs on (download.cpp)

 private:
  explicit Download(std::shared_ptr<Job> job) : job_(std::move(job)) {}
  std::shared_ptr<Job> job_;
  bool left_ = false;
};

}  // namespace hearth::server
