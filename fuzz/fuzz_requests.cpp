// libFuzzer target: request bodies of every endpoint family through the validation their
// handlers run, and the other untrusted texts the server reads. The first byte picks the
// family; the rest is the input:
//   0 /api/chat            -> Inference::count_chat_tokens (checks, renders, tokenizes)
//   1 /v1/chat/completions -> openai_chat_request, then the /api/chat path above
//   2 /v1/messages         -> anthropic_request, then the /api/chat path above
//   3 /v1/completions      -> openai_completion_request
//   4 /api/create          -> parse_create_request, ModelCreator::validate
//   5 a model name         -> ModelName::parse; a valid name's manifest path stays in the store
//   6 a manifest           -> parse_manifest
//   7 "options"            -> apply_options
//   8 an imatrix file      -> quant::load_imatrix (legacy and GGUF)
//   9 text to tokenize     -> the next byte picks a tokenizer (SentencePiece, byte-level BPE,
//                             WordPiece) and the specials mode; every id in range, every
//                             piece printable back
//  10 /v1/responses        -> responses_request, openai_chat_request, then the /api/chat path
//  11 a registry's answers -> the next byte picks: a WWW-Authenticate challenge
//                             (parse_challenge), a pulled manifest (parse_manifest, then
//                             check_pulled_manifest), an error body (registry::describe)
// The store holds one real model (stories260K with a template that takes tools), set up
// once from HEARTH_TESTDATA. Every refusal must be a 4xx with a message; nothing may crash.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gguf/gguf.h"
#include "model/vocab.h"
#include "quant/imatrix.h"
#include "quant/imatrix_stats.h"
#include "server/anthropic.h"
#include "server/create.h"
#include "server/gotemplate.h"
#include "server/inference.h"
#include "server/name.h"
#include "server/openai.h"
#include "server/options.h"
#include "server/responses.h"
#include "server/registry_auth.h"
#include "server/store.h"
#include "server/transfer.h"

namespace {

using namespace hearth::server;
namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct World {
  fs::path root;
  std::unique_ptr<Store> store;
  std::unique_ptr<Inference> inference;
  std::vector<hearth::model::Vocab> vocabs;
  World() {
    const char* td = std::getenv("HEARTH_TESTDATA");
    if (!td) {
      std::fputs("fuzz_requests: set HEARTH_TESTDATA (../shared/testdata)\n", stderr);
      std::abort();
    }
    root = fs::temp_directory_path() / ("hearth-fuzz-requests-" + std::to_string(::getpid()));
    store = std::make_unique<Store>(root);
    const std::string gguf = read_file(fs::path(td) / "models/stories260K.gguf");
    const std::string tmpl = read_file(fs::path(td) / "ollama-templates/command-r.gotmpl");
    const std::string config = R"({"model_format":"gguf","model_family":"llama","file_type":"F32"})";
    auto m = store->write_blob_bytes(gguf), t = store->write_blob_bytes(tmpl), c = store->write_blob_bytes(config);
    if (gguf.empty() || tmpl.empty() || !m.ok() || !t.ok() || !c.ok()) std::abort();
    const std::string manifest =
        R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":")" + c.value() +
        R"(","size":1},"layers":[)"
        R"({"mediaType":"application/vnd.ollama.image.model","digest":")" + m.value() + R"(","size":1},)"
        R"({"mediaType":"application/vnd.ollama.image.template","digest":")" + t.value() + R"(","size":1}]})";
    if (auto st = store->write_manifest(ModelName::parse("m"), manifest); !st) {
      std::fprintf(stderr, "fuzz_requests: %s\n", st.message().c_str());
      std::abort();
    }
    inference = std::make_unique<Inference>(*store, InferenceOptions{});
    for (const char* v : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-bert-bge.gguf",
                          "ggml-vocab-deepseek-llm.gguf"}) {
      auto g = hearth::gguf::GgufFile::open((fs::path(td) / "vocab" / v).string());
      if (!g) std::abort();
      auto vocab = hearth::model::Vocab::from_gguf(g.value());
      if (!vocab) std::abort();
      vocabs.push_back(std::move(vocab.value()));
    }
  }
  ~World() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

World& world() {
  static World w;
  return w;
}

void check_refusal(const std::optional<Refusal>& r) {
  if (r && (r->status < 400 || r->status > 499 || r->message.empty())) {
    std::fprintf(stderr, "refusal %d: %s\n", r ? r->status : 0, r ? r->message.c_str() : "");
    __builtin_trap();
  }
}

void chat(const std::string& body) {
  hearth::server::http::Request req;
  req.method = "POST";
  req.path = "/api/chat";
  req.body = body;
  int count = 0;
  check_refusal(world().inference->count_chat_tokens(req, count));
}

void name(std::string_view text) {
  const ModelName n = ModelName::parse(text);
  if (!n.valid()) return;
  const fs::path p = n.manifest_path();
  if (p.is_absolute()) __builtin_trap();
  int parts = 0;
  for (const auto& part : p) {
    if (part == ".." || part == "." || part.empty()) __builtin_trap();
    ++parts;
  }
  if (parts != 5) __builtin_trap();  // manifests/host/namespace/model/tag
  if (!ModelName::parse(n.shortest()).same_model(n)) __builtin_trap();
}

void imatrix(std::string_view bytes) {
  const int fd = ::memfd_create("imatrix", 0);
  if (fd < 0) return;
  if (::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size())) {
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    auto r = hearth::quant::load_imatrix(path);
    if (!r && r.message().empty()) __builtin_trap();
    // Merged as `hearth imatrix --in-file` merges it, twice (the second adds to the first).
    if (auto f = hearth::quant::read_imatrix_file(path); f) {
      hearth::quant::ImatrixStats stats(128);
      for (int i = 0; i < 2; ++i)
        if (hearth::Status s = stats.merge(f.value(), path); !s && s.message().empty()) __builtin_trap();
      if (stats.chunk_count() < 0) __builtin_trap();
    }
  }
  ::close(fd);
}

void tokenize(std::string_view in) {
  if (in.empty()) return;
  const auto& vocabs = world().vocabs;
  const uint8_t pick = static_cast<uint8_t>(in[0]);
  const hearth::model::Vocab& v = vocabs[pick % vocabs.size()];
  auto ids = v.tokenize(in.substr(1), pick & 0x10, pick & 0x20);
  if (!ids) {
    if (ids.message().empty()) __builtin_trap();
    return;
  }
  for (auto id : ids.value()) {
    if (id < 0 || static_cast<size_t>(id) >= v.size()) __builtin_trap();
    (void)v.piece(id, pick & 0x40);
  }
}

}  // namespace

// Family 11: what a (hostile) registry sends back.
void registry_answer(const std::string& in) {
  if (in.empty()) return;
  const std::string rest = in.substr(1);
  switch (static_cast<unsigned char>(in[0]) % 3) {
    case 0: (void)registry::parse_challenge(rest); break;
    case 1:
      if (auto m = parse_manifest(rest)) {
        if (check_pulled_manifest(m.value()))  // an accepted manifest names only store paths
          for (const Layer* l : transfer_order(m.value()))
            if (l->digest.size() != 71) __builtin_trap();
      }
      break;
    default: {
      registry::Reply r;
      r.status = 400;
      r.body = rest;
      if (registry::describe(r).rfind("400: ", 0) != 0) __builtin_trap();
    }
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 12) {
    case 0: chat(in); break;
    case 1:
      if (auto r = openai_chat_request(in)) chat(r.value().ollama_body);
      else if (r.message().empty()) __builtin_trap();
      break;
    case 2:
      if (auto r = anthropic_request(in, false, true)) chat(r.value().ollama_body);
      else if (r.message().empty()) __builtin_trap();
      break;
    case 3:
      if (auto r = openai_completion_request(in); !r && r.message().empty()) __builtin_trap();
      break;
    case 4:
      if (auto r = parse_create_request(in)) {
        ModelCreator creator(*world().store, {});
        if (auto e = creator.validate(r.value()); e && (e->status < 400 || e->status > 499)) __builtin_trap();
      }
      break;
    case 5: name(in); break;
    case 6: (void)parse_manifest(in); break;
    case 11: registry_answer(in); break;
    case 7:
      if (auto v = hearth::server::tmpl::from_json(in)) {
        ModelOptions o = default_model_options();
        (void)apply_options(v.value(), o);
      }
      break;
    case 8: imatrix(in); break;
    case 9: tokenize(in); break;
    default:
      if (auto r = responses_request(in)) {
        if (auto c = openai_chat_request(r.value().chat_body)) chat(c.value().ollama_body);
        else if (c.message().empty()) __builtin_trap();
      } else if (r.message().empty()) {
        __builtin_trap();
      }
      break;
  }
  return 0;
}
