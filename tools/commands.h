// The verbs of the `hearth` command. Each takes the arguments after its own name and
// returns the process exit status; all real work is done by the libraries.
#pragma once

#include <string>
#include <vector>

namespace hearth::cli {

using Args = std::vector<std::string>;

int cmd_gguf(const Args& args);
int cmd_quantize(const Args& args);
int cmd_bench(const Args& args);
int cmd_run(const Args& args);
int cmd_eval(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_perplexity(const Args& args);
int cmd_imatrix(const Args& args);
int cmd_synth(const Args& args);
int cmd_bench_model(const Args& args);
int cmd_serve(const Args& args);
// create, list/ls, ps, show, cp, rm: clients of a running server.
int cmd_client(const std::string& verb, const Args& args);
// `hearth run NAME [PROMPT]`: a client of the server (one prompt, or an interactive chat).
int cmd_run_server(const Args& args);
int cmd_stop(const Args& args);
// `hearth pull|push NAME [--insecure]`: clients of /api/pull and /api/push with progress bars.
int cmd_pull(const Args& args);
int cmd_push(const Args& args);
int cmd_version();

}  // namespace hearth::cli
