// The model store in Ollama's on-disk layout (../shared/reference/ollama-api.md §6):
//   <root>/manifests/<host>/<namespace>/<model>/<tag>   Docker v2 manifest JSON
//   <root>/blobs/sha256-<hex>                           content-addressed blobs
// Every write goes to a temporary file in the same directory, is fsync'd and renamed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gguf/result.h"
#include "server/name.h"

namespace hearth::server {

struct Layer {
  std::string media_type, digest;  // digest "sha256:<hex>"
  int64_t size = 0;
  std::string from;                // provenance ("" if absent)
};

struct Manifest {
  ModelName name;                  // as spelled on disk
  std::filesystem::path path;
  std::string raw;                 // the file's bytes
  std::string digest_hex;          // SHA-256 of raw (Ollama's model id)
  Layer config;
  std::vector<Layer> layers;
  std::filesystem::file_time_type mtime;
  int64_t total_size() const;      // layers + config, as /api/tags reports
  const Layer* layer(std::string_view media_type) const;
};

// Streaming SHA-256 (OpenSSL libcrypto).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::string hex();  // finishes
 private:
  void* ctx_;
};
std::string sha256_hex(std::string_view data);

class Store {
 public:
  explicit Store(std::filesystem::path root) : root_(std::move(root)), refs_(std::make_shared<Refs>()) {}
  // $OLLAMA_MODELS, else ~/.ollama/models.
  static std::filesystem::path default_root();
  const std::filesystem::path& root() const { return root_; }

  // Every manifest (manifests/*/*/*/*); unreadable ones are skipped.
  std::vector<Manifest> list() const;
  // The manifest of `name`, matched part by part case-insensitively; error if absent.
  Result<Manifest> find(const ModelName& name) const;

  // "sha256:<hex>" or "sha256-<hex>" (64 hex digits) -> blobs/sha256-<hex>; empty if malformed.
  std::filesystem::path blob_path(std::string_view digest) const;
  static bool valid_digest(std::string_view digest);
  // "sha256:<hex>" for either spelling of a valid digest.
  static std::string canonical_digest(std::string_view digest);
  bool has_blob(std::string_view digest) const;
  // A blob's bytes ("" when it is absent or unreadable).
  std::string blob_text(std::string_view digest) const;
  // The text of a manifest's layers of one media type (template, system prompt,
  // parameters, license), several joined by newlines; "" if it has none.
  std::string layer_text(const Manifest& m, std::string_view media_type) const;
  // Writes a blob while hashing it: write() any number of times, then commit() stores it
  // under its actual digest ("sha256:<hex>", returned). Destroyed uncommitted, it leaves
  // nothing behind.
  class BlobWriter {
   public:
    BlobWriter(BlobWriter&& o) noexcept;
    ~BlobWriter();
    Status write(const char* data, size_t n);
    // Syncs and moves the bytes into the store under their digest. With `expect`, bytes of
    // another digest are discarded instead: Error "digest mismatch, expected …, got …".
    Result<std::string> commit(const std::string* expect = nullptr);

   private:
    friend class Store;
    BlobWriter(const Store* s, int fd, std::string tmp) : store_(s), fd_(fd), tmp_(std::move(tmp)), sha_(new Sha256) {}
    const Store* store_;
    int fd_;
    std::string tmp_;
    std::unique_ptr<Sha256> sha_;
  };
  Result<BlobWriter> blob_writer() const;
  Result<std::string> write_blob_bytes(std::string_view bytes) const;

  // Moves a finished file (written in blobs/ under a temporary name) into the store under
  // its digest, which is returned ("sha256:<hex>"). On error the file is removed.
  Result<std::string> adopt_file(const std::filesystem::path& tmp) const;
  // Moves a file whose SHA-256 the caller has verified to be `digest` (and synced) into the
  // store under that digest, on the same filesystem (a download in partial/).
  Status publish_verified(const std::filesystem::path& file, std::string_view digest) const;
  // A temporary path in blobs/ for a file that adopt_file() will take (prune removes
  // leftovers after the grace period).
  std::filesystem::path temp_blob_path(std::string_view tag) const;

  // Writes a manifest after checking, atomically with respect to blob removal, that every
  // blob it references exists: a manifest never points at nothing (Error naming the blob).
  Status write_manifest(const ModelName& name, const std::string& json);
  // Why `bytes` more cannot be stored — the free space minus kDiskReserve, which uploads and
  // quantizations never take — or nothing when they fit (or the space cannot be read).
  std::optional<std::string> lacks_space(uint64_t bytes) const;
  static constexpr uint64_t kDiskReserve = uint64_t{512} << 20;
  // Removes those of `digests` that no manifest references and nobody has pinned.
  void drop_unreferenced(const std::vector<std::string>& digests) const;

  // Keeps blobs from removal while a manifest that will reference them is being built
  // (create, copy): pin a digest before checking that its blob exists, and the check stays
  // true until the manifest is written. Released when destroyed. Copies of a Store share
  // pins (one server, one set).
  class Pins {
   public:
    explicit Pins(const Store& s) : store_(&s) {}
    ~Pins() { release(); }
    Pins(const Pins&) = delete;
    Pins& operator=(const Pins&) = delete;
    void add(const std::string& digest);
    void release();  // unpins everything now (e.g. once the manifest is written)

   private:
    const Store* store_;
    std::vector<std::string> digests_;
  };
  // Start-up pruning as Ollama does it: when every manifest parses, blob files older than
  // `grace_seconds` that no manifest references (or whose names are not digests: leftovers
  // of interrupted uploads) are deleted, then empty manifest directories. Returns how many
  // files went.
  size_t prune(int64_t grace_seconds) const;
  // Removes resumable downloads (partial/) nobody has touched for `max_age_seconds` and no
  // process is writing (their flock is free). Returns how many downloads went.
  size_t prune_partials(int64_t max_age_seconds) const;
  static constexpr int64_t kPartialMaxAge = 7 * 24 * 3600;
  // Removes the manifest, then blobs no other manifest references, then empty dirs.
  Status remove(const Manifest& m);
  // Byte copy of the manifest to `to` (overwrites).
  Status copy(const Manifest& m, const ModelName& to);

 private:
  Status write_atomic(const std::filesystem::path& path, std::string_view bytes) const;
  // Manifest writes, blob removal and pins are serialised by one mutex, so "exists and is
  // referenced or pinned" cannot change between a check and the act that relies on it.
  struct Refs {
    std::mutex mu;
    std::multiset<std::string> pinned;  // canonical digests
  };
  std::filesystem::path root_;
  std::shared_ptr<Refs> refs_;
};

Result<Manifest> parse_manifest(const std::string& raw);

}  // namespace hearth::server
