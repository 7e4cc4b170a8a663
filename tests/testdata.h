// Where the shared test artefacts are, and small helpers to read them.
//
// HEARTH_TESTDATA (default ../shared/testdata beside the checkout) and HEARTH_REFERENCE
// (default ../shared/reference). A missing directory fails the test that needs it,
// loudly: a check that cannot run is never counted as a pass.
#pragma once

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace hearth::test {

namespace fs = std::filesystem;

// A loopback port that was free a moment ago (for servers the tests start as processes).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline fs::path env_dir(const char* var, const char* fallback) {
  if (const char* v = std::getenv(var); v && *v) return fs::path(v);
  return fs::path(HEARTH_SOURCE_DIR) / fallback;
}

inline fs::path testdata_dir() {
  fs::path p = env_dir("HEARTH_TESTDATA", "../shared/testdata");
  if (!fs::is_directory(p)) {
    ADD_FAILURE() << "test data directory " << p << " is missing (set HEARTH_TESTDATA)";
    std::abort();  // every later check would be meaningless
  }
  return p;
}

inline fs::path reference_dir() {
  fs::path p = env_dir("HEARTH_REFERENCE", "../shared/reference");
  if (!fs::is_directory(p)) {
    ADD_FAILURE() << "reference directory " << p << " is missing (set HEARTH_REFERENCE)";
    std::abort();
  }
  return p;
}

inline std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << p;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::string read_text(const fs::path& p) {
  auto b = read_bytes(p);
  return {b.begin(), b.end()};
}

// Every *.gguf under a directory, sorted, as paths relative to it.
inline std::vector<std::string> gguf_files_under(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && e.path().extension() == ".gguf") out.push_back(fs::relative(e.path(), root).string());
  std::sort(out.begin(), out.end());
  return out;
}

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "hearth-test-XXXXXX").string();
    path_ = fs::path(::mkdtemp(t.data()));
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace hearth::test
