// Where the shared test artefacts are, and small helpers to read them.
//
// HEARTH_TESTDATA (default ../shared/testdata beside the checkout) and HEARTH_REFERENCE
// (default ../shared/reference). A missing directory fails the test that needs it,
// loudly: a check that cannot run is never counted as a pass.
#pragma once

#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace hearth::test {

namespace fs = std::filesystem;

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
