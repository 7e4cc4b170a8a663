// hearth: one command in front of every Hearth library.
#include <cstdio>
#include <cstring>
#include <string>

#include "tools/commands.h"

namespace {

constexpr const char* kUsage =
    "usage: hearth <command> [args]\n"
    "\n"
    "commands:\n"
    "  serve                                 the Ollama API on OLLAMA_HOST (127.0.0.1:11434)\n"
    "  create NAME [-f Modelfile] [-q TYPE]  create a model on the server from a Modelfile\n"
    "  list | ps                             models on the server | models loaded\n"
    "  show NAME [--modelfile|--template|--parameters|--license|--system]\n"
    "  cp SRC DST | rm NAME...               copy | delete models on the server\n"
    "  pull | push NAME [--insecure]         fetch a model from | send one to its registry\n"
    "  gguf info FILE [--json] [--tensors]   describe a GGUF file (header, metadata, tensors)\n"
    "  quantize IN OUT TYPE [THREADS] [opts] quantize a GGUF model as llama-quantize does\n"
    "  run MODEL.gguf PROMPT [opts]          generate text from a file in-process (streams; tokens/s on stderr)\n"
    "  run NAME [PROMPT] [--verbose]         a model of the server: one answer, or an interactive chat\n"
    "  stop NAME                             unload a model from the server\n"
    "  eval MODEL.gguf --prompt T [--logits F]  the prompt's token ids and every position's logits\n"
    "  tokenize MODEL.gguf [--json] TEXT     token ids (and pieces)\n"
    "  perplexity MODEL.gguf -f TEXT [-c N]  perplexity as llama-perplexity computes it\n"
    "  imatrix MODEL.gguf -f TEXT [-o OUT]   an importance matrix as llama-imatrix computes it\n"
    "  bench kernels [opts]                  kernel GB/s and GFLOP/s against the machine's limits\n"
    "  bench model MODEL.gguf [-p N] [-n N]  prompt and generation tokens/s, like llama-bench\n"
    "  synth --vocab V.gguf --shape S OUT    a model of a real shape with seeded random weights\n"
    "  help | --version                      this text | the server's API version\n"
    "\n"
    "Run 'hearth <command>' without arguments for its own usage.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::string verb = argv[1];
  hearth::cli::Args rest(argv + 2, argv + argc);
  if (verb == "help" || verb == "--help" || verb == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (verb == "--version" || verb == "-v" || verb == "version") return hearth::cli::cmd_version();
  if (verb == "stop") return hearth::cli::cmd_stop(rest);
  if (verb == "gguf") return hearth::cli::cmd_gguf(rest);
  if (verb == "serve") return hearth::cli::cmd_serve(rest);
  for (const char* v : {"create", "list", "ls", "ps", "show", "cp", "rm"})
    if (verb == v) return hearth::cli::cmd_client(verb, rest);
  if (verb == "pull") return hearth::cli::cmd_pull(rest);
  if (verb == "push") return hearth::cli::cmd_push(rest);
  if (verb == "quantize") return hearth::cli::cmd_quantize(rest);
  if (verb == "bench") return hearth::cli::cmd_bench(rest);
  if (verb == "run") return hearth::cli::cmd_run(rest);
  if (verb == "eval") return hearth::cli::cmd_eval(rest);
  if (verb == "tokenize") return hearth::cli::cmd_tokenize(rest);
  if (verb == "perplexity") return hearth::cli::cmd_perplexity(rest);
  if (verb == "imatrix") return hearth::cli::cmd_imatrix(rest);
  if (verb == "synth") return hearth::cli::cmd_synth(rest);
  std::fprintf(stderr, "hearth: unknown command '%s'\n\n%s", verb.c_str(), kUsage);
  return 2;
}
