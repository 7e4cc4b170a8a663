#include "server/download.h"

#include <fcntl.h>
#include <simdjson.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "server/json_writer.h"

namespace hearth::server {

namespace fs = std::filesystem;

namespace {

struct Part {
  uint64_t offset = 0, size = 0;
  std::atomic<uint64_t> done{0};  // bytes of this part on disk, from its start
  Status result;
};

constexpr size_t kWriteBuffer = size_t{1} << 20;

// clamp(size/64, part_min, 256 MiB)-sized parts covering [0, size).
std::vector<std::pair<uint64_t, uint64_t>> plan_parts(uint64_t size, uint64_t part_min) {
  const uint64_t part = std::clamp<uint64_t>(size / 64, part_min, uint64_t{256} << 20);
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (uint64_t at = 0; at < size; at += part) out.emplace_back(at, std::min(part, size - at));
  if (out.empty()) out.emplace_back(0, 0);
  return out;
}

std::string hex_of(const std::string& digest) { return digest.substr(7); }

}  // namespace

struct Download::Job {
  Store store;
  ModelName name;
  bool insecure = false;
  registry::Options opt;
  Layer layer;
  std::string key;

  std::atomic<int64_t> completed{0};
  std::atomic<uint64_t> fetched{0};
  uint64_t resumed = 0;
  std::atomic<int> waiters{0};
  std::atomic<bool> cancel{false};
  std::mutex mu;
  std::condition_variable cv;
  bool ended = false;
  Status result;

  fs::path data, state;
  std::string where;  // the partial file as messages name it (inside the store, never absolute)
  int fd = -1;
  std::vector<std::unique_ptr<Part>> parts;

  Job(const Store& s) : store(s) {}
  void run();
  Status transfer();
  Status open_partial();
  bool hash_available(Sha256& sha, uint64_t& hashed, std::vector<char>& buf) const;
  bool load_state();
  void save_state();
  Status fetch_part(registry::Client& client, Part& p);
  // With opt.max_rate: sleeps while `total` bytes are ahead of the rate since the start.
  void throttle(uint64_t total) const;
  std::chrono::steady_clock::time_point began = std::chrono::steady_clock::now();
  Status finish(Sha256& sha);
};

namespace {

std::mutex g_mu;
std::condition_variable g_idle;                             // notified when a job leaves g_jobs
std::map<std::string, std::weak_ptr<Download::Job>> g_jobs;  // guarded by g_mu

}  // namespace

std::unique_ptr<Download> Download::start(const Store& store, const ModelName& name, bool insecure,
                                          const registry::Options& opt, const Layer& layer) {
  const std::string key = store.root().string() + "|" + layer.digest;
  std::unique_lock lock(g_mu);
  while (true) {
    auto it = g_jobs.find(key);
    auto job = it == g_jobs.end() ? nullptr : it->second.lock();
    if (!job) break;
    std::unique_lock jl(job->mu);
    if (!job->ended && !job->cancel) {
      job->waiters++;
      return std::unique_ptr<Download>(new Download(job));
    }
    // A cancelled download still holds its file: start anew once it has ended.
    lock.unlock();
    job->cv.wait(jl, [&] { return job->ended; });
    jl.unlock();
    lock.lock();
  }
  auto job = std::make_shared<Job>(store);
  job->name = name;
  job->insecure = insecure;
  job->opt = opt;
  job->layer = layer;
  job->key = key;
  job->waiters = 1;
  g_jobs[key] = job;
  std::thread([job] { job->run(); }).detach();
  return std::unique_ptr<Download>(new Download(job));
}

Download::~Download() { leave(); }

int64_t Download::completed() const { return job_->completed.load(std::memory_order_relaxed); }

bool Download::wait_for(int ms) {
  std::unique_lock lock(job_->mu);
  return job_->cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return job_->ended; });
}

Status Download::result() const {
  std::lock_guard lock(job_->mu);
  return job_->result;
}

DownloadStats Download::stats() const { return {job_->resumed, job_->fetched.load()}; }

bool Download::wait_idle(int ms) {
  std::unique_lock lock(g_mu);
  return g_idle.wait_for(lock, std::chrono::milliseconds(ms), [] {
    for (const auto& [key, job] : g_jobs)
      if (!job.expired()) return false;
    return true;
  });
}

void Download::leave() {
  if (left_) return;
  left_ = true;
  if (job_->waiters.fetch_sub(1) == 1) job_->cancel = true;
}

void Download::Job::run() {
  Status st = transfer();
  if (fd >= 0) ::close(fd);  // releases the flock
  fd = -1;
  {
    std::lock_guard lock(g_mu);
    if (auto it = g_jobs.find(key); it != g_jobs.end() && it->second.lock().get() == this) g_jobs.erase(it);
    g_idle.notify_all();
  }
  std::lock_guard lock(mu);
  result = st;
  ended = true;
  cv.notify_all();
}

// Resumes from the state file when it describes this blob's size with sane parts.
bool Download::Job::load_state() {
  std::ifstream in(state, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  int64_t size = -1;
  simdjson::dom::array arr;
  if (p.parse(ss.str()).get(doc) || doc["size"].get(size) || size != layer.size || doc["parts"].get(arr)) return false;
  uint64_t expect = 0;
  std::vector<std::unique_ptr<Part>> got;
  for (simdjson::dom::element e : arr) {
    simdjson::dom::array t;
    uint64_t off = 0, sz = 0, done = 0;
    if (e.get(t) || t.size() != 3 || t.at(0).get(off) || t.at(1).get(sz) || t.at(2).get(done)) return false;
    if (off != expect || done > sz) return false;
    auto part = std::make_unique<Part>();
    part->offset = off;
    part->size = sz;
    part->done = done;
    got.push_back(std::move(part));
    expect += sz;
  }
  struct stat st {};
  if (expect != static_cast<uint64_t>(layer.size) || got.empty() || ::fstat(fd, &st) != 0 || st.st_size != layer.size) return false;
  parts = std::move(got);
  return true;
}

// Syncs the data, then records every part's progress (atomically: tmp + rename).
void Download::Job::save_state() {
  ::fdatasync(fd);
  JsonWriter w;
  w.begin_object().key("digest").str(layer.digest).key("size").num(layer.size).key("parts").begin_array();
  for (const auto& p : parts)
    w.begin_array().num(static_cast<int64_t>(p->offset)).num(static_cast<int64_t>(p->size)).num(static_cast<int64_t>(p->done.load())).end_array();
  w.end_array().end_object();
  const fs::path tmp = state.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << w.text();
    if (!out) return;  // the next save tries again; resuming only needs a consistent file
  }
  std::error_code ec;
  fs::rename(tmp, state, ec);
}

void Download::Job::throttle(uint64_t total) const {
  if (opt.max_rate == 0) return;
  const auto due = began + std::chrono::microseconds(total * 1000000 / opt.max_rate);
  while (!cancel && std::chrono::steady_clock::now() < due) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}


namespace {

// Writes one part's bytes as they arrive, at the part's offset: small pieces gathered and
// written 1 MiB at a time, large ones directly; Part::done counts written bytes only.
class PartWriter {
 public:
  PartWriter(Download::Job& job, Part& p, uint64_t start) : job_(job), p_(p), start_(start) { pending_.reserve(kWriteBuffer); }
  // A 200 instead of a 206: the registry ignored Range and sends the blob from byte 0.
  bool head(int status) {
    whole_ = status == 200;
    return true;
  }
  bool receive(const char* d, size_t n) {
    if (whole_ && skipped_ < start_) {
      const size_t k = static_cast<size_t>(std::min<uint64_t>(n, start_ - skipped_));
      skipped_ += k;
      d += k;
      n -= k;
    }
    const uint64_t room = p_.size - p_.done - pending_.size();
    if (n > room) over_ = true, n = static_cast<size_t>(room);
    if (pending_.empty() && n >= kWriteBuffer / 4) {
      if (!commit(d, n)) return false;
    } else {
      pending_.append(d, n);
      const bool due = pending_.size() >= kWriteBuffer || job_.opt.max_rate > 0 || pending_.size() == p_.size - p_.done;
      if (due && !flush()) return false;
    }
    return !over_ && !job_.cancel;
  }
  bool flush() {
    const bool ok = pending_.empty() || commit(pending_.data(), pending_.size());
    pending_.clear();
    return ok && !failed_;
  }
  // More bytes came than the part holds (the rest was dropped).
  bool over() const { return over_; }

 private:
  bool commit(const char* d, size_t n) {
    if (failed_ || ::pwrite(job_.fd, d, n, static_cast<off_t>(p_.offset + p_.done)) != static_cast<ssize_t>(n)) {
      failed_ = true;
      return false;
    }
    p_.done.fetch_add(n, std::memory_order_release);
    job_.completed.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
    job_.throttle(job_.fetched.fetch_add(n, std::memory_order_relaxed) + n);
    return true;
  }
  Download::Job& job_;
  Part& p_;
  const uint64_t start_;
  uint64_t skipped_ = 0;
  bool whole_ = false, over_ = false, failed_ = false;
  std::string pending_;
};

}  // namespace

// Fetches the rest of one part, retrying transport errors, stalls and 5xx answers.
Status Download::Job::fetch_part(registry::Client& client, Part& p) {
  std::string last;
  for (int attempt = 0; attempt <= opt.retries; attempt++) {
    if (attempt > 0 && !registry::sleep_unless_cancelled(opt.backoff_for(attempt), &cancel)) return Error{"cancelled"};
    if (cancel) return Error{"cancelled"};
    const uint64_t start = p.offset + p.done;
    if (p.done == p.size) return {};
    registry::Call c;
    c.method = "GET";
    c.url = client.path("blobs/" + layer.digest);
    c.headers.emplace_back("Range", "bytes=" + std::to_string(start) + "-" + std::to_string(p.offset + p.size - 1));
    PartWriter w(*this, p, start);
    c.receive = [&](const char* d, size_t n) { return w.receive(d, n); };
    c.on_head = [&](const registry::Reply& h) { return w.head(h.status); };
    const registry::Reply r = client.send(c);
    if (!w.flush()) return Error{std::string("writing the download: ") + std::strerror(errno)};
    if (w.over() || (p.done == p.size && (r.ok() || r.error == "cancelled"))) {
      if (w.over() && r.status == 206) return Error{"the registry sent more bytes of " + layer.digest + " than asked"};
      return {};
    }
    if (cancel) return Error{"cancelled"};
    if (r.status == 416)
      return Error{"the registry has fewer bytes of " + layer.digest + " than the manifest's size " + std::to_string(layer.size)};
    if (r.status >= 400 && r.status < 500 && r.status != 408 && r.status != 429)
      return Error{describe(r)};
    last = r.status == 0 ? r.error : r.ok() ? "the registry's answer ended early" : describe(r);
  }
  return Error{last + " (after " + std::to_string(opt.retries + 1) + " tries)"};
}

// Opens (and locks) the partial file, resuming from its state or planning the parts.
Status Download::Job::open_partial() {
  const std::string file = "sha256-" + hex_of(layer.digest);
  std::error_code ec;
  fs::create_directories(store.root() / "partial", ec);
  data = store.root() / "partial" / file;
  state = store.root() / "partial" / (file + ".json");
  where = "partial/" + file;
  fd = ::open(data.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Error{"opening " + where + ": " + std::strerror(errno)};
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) return Error{layer.digest + " is being downloaded by another process"};
  if (!load_state()) {
    parts.clear();
    for (auto [off, size] : plan_parts(static_cast<uint64_t>(layer.size), opt.part_min)) {
      auto part = std::make_unique<Part>();
      part->offset = off;
      part->size = size;
      parts.push_back(std::move(part));
    }
    // Allocated up front: no block allocation under the inode lock the writers share.
    if (::ftruncate(fd, layer.size) != 0) return Error{"sizing " + where + ": " + std::strerror(errno)};
    if (layer.size > 0) (void)::posix_fallocate(fd, 0, layer.size);  // best effort (not every filesystem)
  }
  for (const auto& p : parts) resumed += p->done;
  completed = static_cast<int64_t>(resumed);
  if (auto full = store.lacks_space(static_cast<uint64_t>(layer.size) - resumed)) return Error{*full};
  return {};
}

// Hashes the bytes contiguous from `hashed` on that are on disk; false if reading fails.
bool Download::Job::hash_available(Sha256& sha, uint64_t& hashed, std::vector<char>& buf) const {
  for (const auto& p : parts) {
    const uint64_t end = p->offset + p->done.load(std::memory_order_acquire);
    while (hashed >= p->offset && hashed < end) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - hashed));
      if (::pread(fd, buf.data(), n, static_cast<off_t>(hashed)) != static_cast<ssize_t>(n)) return false;
      sha.update(buf.data(), n);
      hashed += n;
    }
  }
  return true;
}

Status Download::Job::transfer() {
  if (Status st = open_partial(); !st) return st;
  registry::Client client(name, insecure, opt);
  // Up to opt.connections workers take the parts in file order, so the bytes arrive roughly
  // in order and the hash below follows them closely.
  const size_t n_workers = std::min(parts.size(), static_cast<size_t>(std::max(opt.connections, 1)));
  std::atomic<int> running{static_cast<int>(n_workers)};
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (size_t w = 0; w < n_workers; w++)
    workers.emplace_back([&] {
      for (size_t i; !cancel && (i = next++) < parts.size();) {
        parts[i]->result = fetch_part(client, *parts[i]);
        if (!parts[i]->result) cancel = true;  // one part failing ends the others (their bytes stay)
      }
      running--;
    });
  // Hash the contiguous prefix as it grows; record progress every second.
  Sha256 sha;
  uint64_t hashed = 0;
  std::vector<char> buf(size_t{4} << 20);
  auto saved = std::chrono::steady_clock::now();
  bool readable = true;
  while (running > 0) {
    readable = readable && hash_available(sha, hashed, buf);
    if (std::chrono::steady_clock::now() - saved > std::chrono::seconds(1)) {
      save_state();
      saved = std::chrono::steady_clock::now();
    }
    const bool idle = hashed == static_cast<uint64_t>(layer.size) || !readable;
    std::this_thread::sleep_for(idle ? std::chrono::microseconds(5000) : std::chrono::microseconds(500));
  }
  for (auto& w : workers) w.join();
  save_state();
  for (const auto& p : parts)
    if (!p->result && p->result.message() != "cancelled") return Error{"pulling " + layer.digest.substr(7, 12) + ": " + p->result.message()};
  if (cancel) return Error{"cancelled"};
  if (!readable || !hash_available(sha, hashed, buf)) return Error{"reading " + where + " failed"};
  return finish(sha);
}

// Compares the digest; publishes the file into blobs/ or deletes the download.
Status Download::Job::finish(Sha256& sha) {
  const std::string got = "sha256:" + sha.hex();
  std::error_code ec;
  if (got != layer.digest) {
    fs::remove(data, ec);
    fs::remove(state, ec);
    return Error{"digest mismatch, file must be downloaded again: want " + layer.digest + ", got " + got};
  }
  if (::fsync(fd) != 0) return Error{std::string("syncing the download: ") + std::strerror(errno)};
  if (auto st = store.publish_verified(data, layer.digest); !st) return st;
  fs::remove(state, ec);
  return {};
}

}  // namespace hearth::server
