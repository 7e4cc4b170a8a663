#include "server/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <simdjson.h>
#include <sstream>

namespace hearth::server {

namespace fs = std::filesystem;

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr); }
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::update(const void* data, size_t n) { EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n); }
std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
  static const char* k = "0123456789abcdef";
  std::string h;
  for (unsigned i = 0; i < len; ++i) {
    h += k[md[i] >> 4];
    h += k[md[i] & 15];
  }
  return h;
}
std::string sha256_hex(std::string_view data) {
  Sha256 s;
  s.update(data.data(), data.size());
  return s.hex();
}

int64_t Manifest::total_size() const {
  int64_t s = config.size;
  for (const Layer& l : layers) s += l.size;
  return s;
}

const Layer* Manifest::layer(std::string_view media_type) const {
  for (const Layer& l : layers)
    if (l.media_type == media_type) return &l;
  return nullptr;
}

Result<Manifest> parse_manifest(const std::string& raw) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  if (auto err = p.parse(raw).get(doc); err) return Error{std::string("manifest is not JSON: ") + simdjson::error_message(err)};
  Manifest m;
  m.raw = raw;
  m.digest_hex = sha256_hex(raw);
  auto layer_of = [](simdjson::dom::element e, Layer& l) -> bool {
    std::string_view mt, dg;
    int64_t size = 0;
    if (e["mediaType"].get(mt) || e["digest"].get(dg) || e["size"].get(size)) return false;
    l.media_type = mt;
    l.digest = dg;
    l.size = size;
    std::string_view from;
    if (!e["from"].get(from)) l.from = from;
    return true;
  };
  simdjson::dom::element cfg;
  if (doc["config"].get(cfg) || !layer_of(cfg, m.config)) return Error{"manifest has no valid config"};
  simdjson::dom::array layers;
  if (doc["layers"].get(layers)) return Error{"manifest has no layers array"};
  for (simdjson::dom::element e : layers) {
    Layer l;
    if (!layer_of(e, l)) return Error{"manifest has a malformed layer"};
    m.layers.push_back(std::move(l));
  }
  return m;
}

fs::path Store::default_root() {
  if (const char* m = std::getenv("OLLAMA_MODELS"); m && *m) return m;
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".ollama" / "models";
}

std::vector<Manifest> Store::list() const {
  std::vector<Manifest> out;
  std::error_code ec;
  const fs::path base = root_ / "manifests";
  if (!fs::is_directory(base, ec)) return out;
  // Exactly four levels: host / namespace / model / tag.
  for (const auto& h : fs::directory_iterator(base, ec))
    for (const auto& n : fs::directory_iterator(h.path(), ec))
      for (const auto& mo : fs::directory_iterator(n.path(), ec))
        for (const auto& t : fs::directory_iterator(mo.path(), ec)) {
          // Dot files are write_atomic's temporaries, never models (nor valid tags).
          if (!t.is_regular_file() || t.path().filename().string().front() == '.') continue;
          std::ifstream in(t.path(), std::ios::binary);
          std::stringstream ss;
          ss << in.rdbuf();
          auto m = parse_manifest(ss.str());
          if (!m) continue;
          m.value().path = t.path();
          m.value().name.scheme = "https";
          m.value().name.host = h.path().filename().string();
          m.value().name.ns = n.path().filename().string();
          m.value().name.model = mo.path().filename().string();
          m.value().name.tag = t.path().filename().string();
          m.value().mtime = fs::last_write_time(t.path(), ec);
          out.push_back(std::move(m.value()));
        }
  return out;
}

Result<Manifest> Store::find(const ModelName& name) const {
  for (Manifest& m : list())
    if (m.name.same_model(name)) return std::move(m);
  return Error{"model '" + name.shortest() + "' not found"};
}

bool Store::valid_digest(std::string_view d) {
  if (d.size() != 71 || d.substr(0, 6) != "sha256" || (d[6] != ':' && d[6] != '-')) return false;
  for (char c : d.substr(7))
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string Store::canonical_digest(std::string_view d) { return "sha256:" + std::string(d.substr(7)); }

fs::path Store::blob_path(std::string_view digest) const {
  if (!valid_digest(digest)) return {};
  return root_ / "blobs" / ("sha256-" + std::string(digest.substr(7)));
}

std::string Store::blob_text(std::string_view digest) const {
  std::ifstream in(blob_path(digest), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string Store::layer_text(const Manifest& m, std::string_view media_type) const {
  std::string out;
  for (const Layer& l : m.layers)
    if (l.media_type == media_type) {
      if (!out.empty()) out += "\n";
      out += blob_text(l.digest);
    }
  return out;
}

bool Store::has_blob(std::string_view digest) const {
  std::error_code ec;
  const fs::path p = blob_path(digest);
  return !p.empty() && fs::is_regular_file(p, ec);
}

Result<Store::BlobWriter> Store::blob_writer() const {
  std::error_code ec;
  fs::create_directories(root_ / "blobs", ec);
  std::string tmpl = (root_ / "blobs" / "sha256-upload-XXXXXX").string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return Error{"cannot create a file in " + (root_ / "blobs").string() + ": " + std::strerror(errno)};
  ::fchmod(fd, 0644);
  return BlobWriter(this, fd, tmpl);
}

Store::BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : store_(o.store_), fd_(o.fd_), tmp_(std::move(o.tmp_)), sha_(std::move(o.sha_)) {
  o.fd_ = -1;
  o.tmp_.clear();
}

Store::BlobWriter::~BlobWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

Status Store::BlobWriter::write(const char* data, size_t n) {
  sha_->update(data, n);
  for (size_t off = 0; off < n;) {
    const ssize_t w = ::write(fd_, data + off, n - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Error{std::string("writing the blob: ") + std::strerror(errno)};
    }
    off += static_cast<size_t>(w);
  }
  return {};
}

Result<std::string> Store::BlobWriter::commit(const std::string* expect) {
  const std::string digest = "sha256:" + sha_->hex();
  if (expect && *expect != digest) return Error{"digest mismatch, expected \"" + *expect + "\", got \"" + digest + "\""};
  if (::fsync(fd_) != 0) return Error{std::string("syncing the blob: ") + std::strerror(errno)};
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_.c_str(), store_->blob_path(digest).c_str()) != 0)
    return Error{std::string("storing the blob: ") + std::strerror(errno)};
  tmp_.clear();
  return digest;
}

Result<std::string> Store::write_blob_bytes(std::string_view bytes) const {
  auto w = blob_writer();
  if (!w) return w.error();
  if (Status s = w.value().write(bytes.data(), bytes.size()); !s) return s.error();
  return w.value().commit();
}

Status Store::write_atomic(const fs::path& path, std::string_view bytes) const {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  // Messages name paths inside the store, never its absolute location (they reach clients).
  const std::string where = path.parent_path().lexically_relative(root_).string();
  if (ec) return Error{"cannot create " + where + ": " + ec.message()};
  std::string tmpl = (path.parent_path() / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return Error{"cannot create a file in " + where + ": " + std::strerror(errno)};
  ::fchmod(fd, 0644);
  bool ok = true;
  for (size_t off = 0; ok && off < bytes.size();) {
    const ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0 && errno == EINTR) continue;
    ok = w > 0;
    off += ok ? static_cast<size_t>(w) : 0;
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmpl.c_str(), path.c_str()) != 0) {
    ::unlink(tmpl.c_str());
    return Error{"writing " + path.lexically_relative(root_).string() + " failed"};
  }
  return {};
}

Status Store::write_manifest(const ModelName& name, const std::string& json) {
  auto m = parse_manifest(json);
  if (!m) return Error{"manifest for " + name.shortest() + ": " + m.message()};
  std::lock_guard lock(refs_->mu);
  std::vector<std::string> digests{m.value().config.digest};
  for (const Layer& l : m.value().layers) digests.push_back(l.digest);
  for (const std::string& d : digests)
    if (!has_blob(d)) return Error{"blob " + d + " of " + name.shortest() + " is missing (was a model sharing it deleted meanwhile?)"};
  return write_atomic(root_ / name.manifest_path(), json);
}

std::optional<std::string> Store::lacks_space(uint64_t bytes) const {
  std::error_code ec;
  const auto space = fs::space(root_, ec);
  if (ec) return std::nullopt;  // unknown: the write itself fails by name
  const uint64_t usable = space.available > kDiskReserve ? space.available - kDiskReserve : 0;
  if (bytes <= usable && usable > 0) return std::nullopt;
  return "not enough disk space: " + std::to_string(bytes >> 20) + " MiB needed, " + std::to_string(usable >> 20) +
         " MiB free beside a reserve of " + std::to_string(kDiskReserve >> 20) + " MiB";
}

void Store::Pins::release() {
  std::lock_guard lock(store_->refs_->mu);
  for (const std::string& d : digests_) store_->refs_->pinned.erase(store_->refs_->pinned.find(d));
  digests_.clear();
}

void Store::Pins::add(const std::string& digest) {
  if (!valid_digest(digest)) return;
  const std::string d = canonical_digest(digest);
  std::lock_guard lock(store_->refs_->mu);
  store_->refs_->pinned.insert(d);
  digests_.push_back(d);
}

Status Store::remove(const Manifest& m) {
  std::error_code ec;
  if (!fs::remove(m.path, ec) || ec) return Error{"removing " + m.path.string() + ": " + (ec ? ec.message() : "not found")};
  // Prune empty directories up to manifests/.
  for (fs::path d = m.path.parent_path(); d != root_ / "manifests" && fs::is_empty(d, ec); d = d.parent_path())
    fs::remove(d, ec);
  std::vector<std::string> mine{m.config.digest};
  for (const Layer& l : m.layers) mine.push_back(l.digest);
  drop_unreferenced(mine);
  return {};
}

void Store::drop_unreferenced(const std::vector<std::string>& digests) const {
  std::lock_guard lock(refs_->mu);
  std::set<std::string> used(refs_->pinned.begin(), refs_->pinned.end());
  for (const Manifest& o : list()) {
    used.insert(o.config.digest);
    for (const Layer& l : o.layers) used.insert(l.digest);
  }
  std::error_code ec;
  for (const std::string& d : digests)
    if (valid_digest(d) && !used.count(canonical_digest(d))) fs::remove(blob_path(d), ec);
}

fs::path Store::temp_blob_path(std::string_view tag) const {
  static std::atomic<uint64_t> counter{0};
  std::error_code ec;
  fs::create_directories(root_ / "blobs", ec);
  return root_ / "blobs" /
         ("sha256-" + std::string(tag) + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
}

Result<std::string> Store::adopt_file(const fs::path& tmp) const {
  auto fail = [&](const std::string& why) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return Error{why};
  };
  std::ifstream in(tmp, std::ios::binary);
  if (!in) return fail("cannot read " + tmp.string());
  Sha256 sha;
  std::vector<char> buf(size_t{1} << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) sha.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return fail("reading " + tmp.string() + " failed");
  const std::string digest = "sha256:" + sha.hex();
  if (::rename(tmp.c_str(), blob_path(digest).c_str()) != 0) return fail(std::string("storing the blob: ") + std::strerror(errno));
  return digest;
}

Status Store::publish_verified(const fs::path& file, std::string_view digest) const {
  std::error_code ec;
  fs::create_directories(root_ / "blobs", ec);
  const fs::path to = blob_path(digest);
  if (to.empty()) return Error{"invalid digest \"" + std::string(digest) + "\""};
  if (::rename(file.c_str(), to.c_str()) != 0) return Error{std::string("storing the blob: ") + std::strerror(errno)};
  if (int dir = ::open((root_ / "blobs").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

size_t Store::prune_partials(int64_t max_age_seconds) const {
  std::error_code ec;
  size_t removed = 0;
  const auto now = fs::file_time_type::clock::now();
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(root_ / "partial", ec)) {
    if (e.path().extension() == ".json" || e.path().extension() == ".tmp") continue;
    const fs::path state = e.path().string() + ".json";
    auto newest = e.last_write_time(ec);
    if (fs::exists(state, ec)) newest = std::max(newest, fs::last_write_time(state, ec));
    if (std::chrono::duration_cast<std::chrono::seconds>(now - newest).count() >= max_age_seconds) stale.push_back(e.path());
  }
  for (const fs::path& data : stale) {
    const int fd = ::open(data.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {  // nobody is downloading it
      fs::remove(data.string() + ".json", ec);
      if (fs::remove(data, ec)) ++removed;
    }
    ::close(fd);
  }
  return removed;
}

size_t Store::prune(int64_t grace_seconds) const {
  std::error_code ec;
  const fs::path base = root_ / "manifests";
  // Leftovers of manifest writes a crash interrupted (write_atomic's ".NAME.tmp-XXXXXX"):
  // at start-up nothing is writing them.
  std::vector<fs::path> temps;
  if (fs::is_directory(base, ec))
    for (auto it = fs::recursive_directory_iterator(base, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (it->is_regular_file(ec) && name.front() == '.' && name.find(".tmp-") != std::string::npos) temps.push_back(it->path());
    }
  for (const fs::path& t : temps) fs::remove(t, ec);
  // Every manifest file must parse, or nothing is deleted: a blob is only garbage when
  // we know every model that could use it.
  size_t files = 0;
  if (fs::is_directory(base, ec))
    for (auto it = fs::recursive_directory_iterator(base, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      if (it->path().filename().string().rfind(".", 0) == 0) continue;  // our temporary files
      ++files;
    }
  std::lock_guard lock(refs_->mu);
  const std::vector<Manifest> ms = list();
  if (ms.size() != files) return 0;
  std::set<std::string> used;
  for (const std::string& d : refs_->pinned) used.insert(blob_path(d).filename().string());
  for (const Manifest& m : ms) {
    used.insert(blob_path(m.config.digest).filename().string());
    for (const Layer& l : m.layers) used.insert(blob_path(l.digest).filename().string());
  }
  size_t removed = 0;
  const auto now = fs::file_time_type::clock::now();
  if (fs::is_directory(root_ / "blobs", ec))
    for (const auto& e : fs::directory_iterator(root_ / "blobs", ec)) {
      const std::string name = e.path().filename().string();
      if (used.count(name)) continue;
      const auto age = std::chrono::duration_cast<std::chrono::seconds>(now - e.last_write_time(ec)).count();
      if (age < grace_seconds) continue;
      if (fs::remove(e.path(), ec)) ++removed;
    }
  // Empty manifest directories, deepest first.
  std::vector<fs::path> dirs;
  if (fs::is_directory(base, ec))
    for (auto it = fs::recursive_directory_iterator(base, ec); it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_directory(ec)) dirs.push_back(it->path());
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) { return a.string().size() > b.string().size(); });
  for (const fs::path& d : dirs)
    if (fs::is_empty(d, ec)) fs::remove(d, ec);
  return removed;
}

Status Store::copy(const Manifest& m, const ModelName& to) {
  if (fs::exists(root_ / to.manifest_path()) && fs::equivalent(m.path, root_ / to.manifest_path())) return {};
  return write_manifest(to, m.raw);  // the source may have been deleted since it was read
}

}  // namespace hearth::server
