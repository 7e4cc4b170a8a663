#include "runner/runner.h"

#include <algorithm>
#include <cmath>

#include "kernels/threads.h"

namespace hearth::runner {

using Clock = std::chrono::steady_clock;

bool Sequence::next(Event* out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  *out = std::move(events_.front());
  events_.pop_front();
  return true;
}

void Sequence::push(Event e) {
  {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

// A sequence in a slot: its prompt (the part not yet in the cache from `next` on), its
// sampler and text stream, and what it has produced.
struct Runner::Active {
  std::shared_ptr<Sequence> seq;
  SeqRequest req;
  int truncated = 0;
  size_t next = 0;
  int evaluated = 0;  // prompt tokens evaluated (not reused)
  model::Sampler sampler;
  model::TextStream text;
  int64_t limit = 0;
  std::optional<TokenId> pending;  // sampled, not yet in the cache
  std::vector<TokenId> generated;
  std::optional<model::GrammarMatcher> grammar;  // with req.grammar, made on the first token
  std::vector<double> pooled;  // embedding requests: the sum (mean) or the chosen row so far
  Clock::time_point start, prompt_done;
  bool embedding() const { return req.pooling != model::Pooling::None; }
  // Whether the prompt row at `pos` contributes to the pooled embedding.
  bool pools(size_t pos) const {
    switch (req.pooling) {
      case model::Pooling::Mean: return true;
      case model::Pooling::Cls: return pos == 0;
      case model::Pooling::Last: return pos + 1 == req.prompt.size();
      default: return false;
    }
  }

  Active(Waiting w, const model::Vocab& vocab)
      : seq(std::move(w.seq)), req(std::move(w.req)), truncated(w.truncated), sampler(req.options.sampling),
        text(vocab, req.options.stop) {}
  bool prompting() const { return next < req.prompt.size(); }
};

Runner::Runner(std::shared_ptr<const model::Model> m, RunnerOptions opt) : model_(std::move(m)), opt_(opt) {
  const int threads = opt.threads > 0 ? opt.threads : kernels::default_threads();
  const bool encoder = model_->hparams().family == model::Family::Encoder;
  if (encoder) enc_ = std::make_unique<model::Encoder>(*model_, threads);
  else ctx_ = std::make_unique<model::Context>(*model_, opt.n_ctx, threads, opt.kv, opt.parallel);
  const size_t slots = static_cast<size_t>(encoder ? std::max(opt.parallel, kEncoderSlots) : opt.parallel);
  cached_.resize(slots);
  active_.resize(slots);
  thread_ = std::thread([this] { loop(); });
}

Runner::~Runner() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

size_t Runner::busy() const {
  std::lock_guard lock(mu_);
  return waiting_.size() + running_;
}

std::pair<size_t, size_t> Runner::load() const {
  std::lock_guard lock(mu_);
  return {waiting_.size(), running_};
}

Result<Runner::Waiting> Runner::prepare(SeqRequest req) const {
  if (req.prompt.empty()) return Error{"the prompt has no tokens"};
  if (enc_ && req.pooling == model::Pooling::None) return Error{"an encoder (" + model_->hparams().arch + ") only embeds: it cannot generate"};
  if (!enc_ && req.pooling == model::Pooling::Rank) return Error{"reranking with a decoder (" + model_->hparams().arch + ") is not supported yet"};
  if (enc_ && req.prompt.size() > static_cast<size_t>(enc_->max_tokens()))
    return Error{"the input has " + std::to_string(req.prompt.size()) + " tokens, more than the model's " + std::to_string(enc_->max_tokens())};
  Waiting w;
  auto fitted = model::fit_prompt(req.prompt, opt_.n_ctx, req.options, model_->vocab().add_bos(), &w.truncated);
  if (!fitted) return fitted.error();
  req.prompt = std::move(fitted.value());
  w.req = std::move(req);
  w.seq = std::make_shared<Sequence>();
  return w;
}

Result<std::shared_ptr<Sequence>> Runner::submit(SeqRequest req) {
  std::vector<SeqRequest> one;
  one.push_back(std::move(req));
  auto seqs = submit_all(std::move(one));
  if (!seqs) return seqs.error();
  return seqs.value().front();
}

Result<std::vector<std::shared_ptr<Sequence>>> Runner::submit_all(std::vector<SeqRequest> reqs) {
  std::vector<Waiting> ready;
  std::vector<std::shared_ptr<Sequence>> seqs;
  for (SeqRequest& r : reqs) {
    auto w = prepare(std::move(r));
    if (!w) return w.error();
    seqs.push_back(w.value().seq);
    ready.push_back(std::move(w.value()));
  }
  {
    std::lock_guard lock(mu_);
    // A full queue refuses; a batch larger than the room left waits for an empty queue
    // (so that one request of many inputs is never refused for ever).
    if (waiting_.size() >= opt_.max_queue || (waiting_.size() + ready.size() > opt_.max_queue && !waiting_.empty()))
      return Error{kServerBusy};
    for (Waiting& w : ready) waiting_.push_back(std::move(w));
  }
  cv_.notify_all();
  return seqs;
}

void Runner::loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !waiting_.empty() || running_ > 0; });
      if (stop_) break;
      admit();
    }
    step();
  }
  // Stopping: every sequence still queued or running is cancelled; none gets an event.
  std::lock_guard lock(mu_);
  for (Waiting& w : waiting_) w.seq->cancel();
  for (auto& a : active_)
    if (a) a->seq->cancel();
}

// Each waiting request takes the free slot whose cached tokens share the longest prefix
// with its prompt (a chat's next turn finds its own earlier turns), and evaluates only the
// rest; at least its last prompt token is evaluated, for the logits.
void Runner::admit() {
  while (!waiting_.empty()) {
    size_t best = active_.size(), best_len = 0;
    const std::vector<TokenId>& prompt = waiting_.front().req.prompt;
    for (size_t s = 0; s < active_.size(); ++s) {
      if (active_[s]) continue;
      const std::vector<TokenId>& c = cached_[s];
      const size_t n = static_cast<size_t>(std::mismatch(c.begin(), c.begin() + std::min(c.size(), prompt.size()), prompt.begin()).first - c.begin());
      if (best == active_.size() || n > best_len) {
        best = s;
        best_len = n;
      }
    }
    if (best == active_.size()) return;  // no free slot
    auto a = std::make_unique<Active>(std::move(waiting_.front()), model_->vocab());
    waiting_.pop_front();
    if (a->seq->cancelled()) continue;
    // An embedding pools the hidden states of its rows: they must all be computed.
    const size_t reuse = a->embedding() ? 0 : std::min(best_len, a->req.prompt.size() - 1);
    if (ctx_) ctx_->truncate(static_cast<int>(best), static_cast<int>(reuse));
    cached_[best].resize(reuse);
    a->next = reuse;
    a->evaluated = static_cast<int>(a->req.prompt.size() - reuse);
    for (TokenId t : a->req.prompt) a->sampler.accept(t);
    a->limit = model::predict_limit(a->req.options, opt_.n_ctx);
    a->start = Clock::now();
    active_[best] = std::move(a);
    ++running_;
  }
}

void Runner::finish(size_t slot, Event e) {
  std::unique_ptr<Active> a = std::move(active_[slot]);
  {
    std::lock_guard lock(mu_);
    --running_;  // before the event: whoever reads it sees the runner without this sequence
  }
  if (!a->seq->cancelled()) a->seq->push(std::move(e));
}

namespace {

// Log-softmax of one row of logits at `t`, and the `top` most likely tokens; with a
// temperature above 0 the logits are divided by it first (the distribution the sampler
// draws from, as Ollama reports it).
TokenLogprob logprob_of(const float* raw, size_t n, TokenId t, int top, float temperature) {
  std::vector<float> scaled;
  const float* logits = raw;
  if (temperature > 0) {
    scaled.assign(raw, raw + n);
    for (float& l : scaled) l /= std::max(temperature, 1e-7f);
    logits = scaled.data();
  }
  const float mx = *std::max_element(logits, logits + n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  const float lse = mx + static_cast<float>(std::log(sum));
  TokenLogprob out;
  out.token = t;
  out.logprob = logits[t] - lse;
  if (top > 0) {
    std::vector<TokenId> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = static_cast<TokenId>(i);
    const size_t k = std::min(n, static_cast<size_t>(top));
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                      [&](TokenId a, TokenId b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    for (size_t i = 0; i < k; ++i) out.top.emplace_back(ids[i], logits[ids[i]] - lse);
  }
  return out;
}

}  // namespace

void Runner::advance(size_t slot, const float* logits) {
  Active& a = *active_[slot];
  const model::Vocab& vocab = model_->vocab();
  if (a.generated.empty() && !a.pending) a.prompt_done = Clock::now();
  const size_t V = model_->hparams().n_vocab;
  TokenId t;
  if (a.req.grammar) {
    t = constrained_sample(a, logits);
    if (t < 0) {
      Event e;
      e.kind = Event::Kind::Error;
      e.error = a.grammar->error().empty() ? "structured output: no token of this model's vocabulary can continue the document"
                                           : "structured output: " + a.grammar->error();
      return finish(slot, std::move(e));
    }
  } else {
    std::vector<float> row(logits, logits + V);
    t = a.sampler.sample(row);
  }
  a.generated.push_back(t);
  const model::TextStream::Step piece = a.text.push(t);
  Event text;
  text.text = piece.text;
  if (a.req.logprobs >= 0) text.logprobs.push_back(logprob_of(logits, V, t, a.req.logprobs, a.req.options.sampling.temperature));
  if (!text.text.empty() || !text.logprobs.empty()) a.seq->push(std::move(text));
  a.pending.reset();
  std::string reason;
  if (piece.stop || (a.grammar && a.grammar->finished())) reason = "stop";
  else if (static_cast<int64_t>(a.generated.size()) >= a.limit) reason = "length";
  else if (!a.req.options.shift && ctx_->length(static_cast<int>(slot)) >= opt_.n_ctx) reason = "length";
  if (reason.empty()) {
    a.sampler.accept(t);
    a.pending = t;
    return;
  }
  if (reason == "length" || !piece.stop) {  // the text held back for stop strings is shown
    if (std::string rest = a.text.flush(); !rest.empty()) {
      Event tail;
      tail.text = rest;
      a.seq->push(std::move(tail));
    }
  }
  Event done;
  done.kind = Event::Kind::Done;
  done.done_reason = reason;
  done.prompt_eval_count = a.evaluated;
  done.prompt_tokens = static_cast<int>(a.req.prompt.size());
  done.truncated = a.truncated;
  done.eval_count = static_cast<int>(a.generated.size());
  done.prompt_eval_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(a.prompt_done - a.start).count();
  done.eval_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - a.prompt_done).count();
  done.context = a.req.prompt;
  for (TokenId g : a.generated)
    if (!vocab.is_eog(g)) done.context.push_back(g);
  finish(slot, std::move(done));
}

TokenId Runner::constrained_sample(Active& a, const float* logits) {
  const model::Vocab& vocab = model_->vocab();
  if (!trie_) {
    trie_ = std::make_shared<const model::TokenTrie>(vocab);
    for (size_t t = 0; t < vocab.size(); ++t)
      if (vocab.is_eog(static_cast<TokenId>(t))) eog_.push_back(static_cast<TokenId>(t));
  }
  if (!a.grammar) a.grammar.emplace(a.req.grammar, trie_, eog_);
  model::GrammarMatcher& g = *a.grammar;
  const size_t V = model_->hparams().n_vocab;
  std::vector<float> row(logits, logits + V);
  TokenId t = a.sampler.sample(row);
  if (!g.allows(t)) {
    row.assign(logits, logits + V);
    if (g.mask(row.data()) == 0 || !g.error().empty()) return -1;
    std::vector<float> masked = row;
    t = a.sampler.sample(row);
    if (!g.allows(t)) t = model::argmax(masked);  // the draw's rounding fell on a masked token
  }
  if (!g.error().empty()) return -1;
  g.accept(t);
  return t;
}

std::vector<size_t> prompt_shares(const std::vector<size_t>& remaining, size_t budget) {
  std::vector<size_t> take(remaining.size(), 0);
  size_t floors = 0, rest_total = 0;
  for (size_t r : remaining) {
    floors += std::min<size_t>(r, model::Context::kUbatch);
    rest_total += r;
  }
  if (remaining.empty() || rest_total == 0) return take;
  size_t left = budget;
  if (floors <= budget) {
    // Few prompts: each reads up to a micro-batch; what is left goes to them by size.
    for (size_t i = 0; i < remaining.size(); ++i) {
      take[i] = std::min<size_t>(remaining[i], model::Context::kUbatch);
      left -= take[i];
    }
    rest_total -= floors;
  }
  // By size of what is left to read, so that prompts sent together finish together.
  const size_t pool = left;
  for (size_t i = 0; i < remaining.size() && rest_total > 0; ++i) {
    const size_t more = remaining[i] - take[i];
    const size_t share = std::min(more, std::max<size_t>(take[i] ? 0 : 1, pool * more / rest_total));
    take[i] += std::min(share, left);
    left -= std::min(share, left);
  }
  return take;
}

bool Runner::step() {
  // Cancelled sequences leave first; their cached tokens stay for prefix reuse.
  for (size_t s = 0; s < active_.size(); ++s)
    if (active_[s] && active_[s]->seq->cancelled()) finish(s, {});
  if (enc_) return encode_step();
  model::Context& ctx = *ctx_;
  std::vector<model::BatchRow> rows;
  std::vector<size_t> owner;  // slot of each row
  // One decode token per generating sequence; a full context shifts first.
  for (size_t s = 0; s < active_.size(); ++s) {
    Active* a = active_[s].get();
    if (!a || !a->pending) continue;
    const int seq = static_cast<int>(s);
    if (ctx.length(seq) >= opt_.n_ctx) {
      const auto [keep, discard] = model::shift_amounts(ctx.length(seq), opt_.n_ctx, a->req.options, model_->vocab().add_bos());
      if (Status st = ctx.shift(seq, keep, discard); !st) {
        Event e;
        e.kind = Event::Kind::Error;
        e.error = st.message();
        finish(s, std::move(e));
        continue;
      }
      cached_[s].erase(cached_[s].begin() + keep, cached_[s].begin() + keep + discard);
    }
    rows.push_back({*a->pending, ctx.length(seq), seq, true});
    owner.push_back(s);
  }
  // Prompt chunks share the step's remaining rows (prompt_shares).
  std::vector<size_t> prompting, remaining;
  for (size_t s = 0; s < active_.size(); ++s)
    if (active_[s] && active_[s]->prompting()) {
      prompting.push_back(s);
      remaining.push_back(active_[s]->req.prompt.size() - active_[s]->next);
    }
  const int budget = std::max(opt_.step_rows - static_cast<int>(rows.size()), model::Context::kUbatch);
  const std::vector<size_t> take = prompt_shares(remaining, static_cast<size_t>(budget));
  for (size_t i = 0; i < prompting.size(); ++i) {
    const size_t s = prompting[i];
    Active& a = *active_[s];
    for (size_t k = 0; k < take[i]; ++k) {
      const size_t at = a.next + k;
      const bool last = at + 1 == a.req.prompt.size();
      rows.push_back({a.req.prompt[at], static_cast<int>(at), static_cast<int>(s), last && !a.embedding(), a.pools(at)});
      owner.push_back(s);
    }
  }
  if (rows.empty()) return false;
  Status st;
  {
    const quant::ComputeTurns::Turn turn(opt_.turns);
    st = ctx.decode(rows, &logits_, &embd_);
  }
  if (!st) {
    // Rows are built to be valid; a failure here is a bug: every sequence in the step ends with it.
    for (size_t s : owner)
      if (active_[s]) {
        Event e;
        e.kind = Event::Kind::Error;
        e.error = st.message();
        finish(s, std::move(e));
      }
    return true;
  }
  for (size_t r = 0; r < rows.size(); ++r) cached_[owner[r]].push_back(rows[r].token);
  for (size_t s : prompting) {
    Active& a = *active_[s];
    for (size_t r = 0; r < rows.size(); ++r)
      if (owner[r] == s) a.next = static_cast<size_t>(rows[r].pos) + 1;
  }
  pool(rows, owner);
  const size_t V = model_->hparams().n_vocab;
  size_t out = 0;
  for (size_t r = 0; r < rows.size(); ++r)
    if (rows[r].logits) advance(owner[r], logits_.data() + (out++) * V);
  return true;
}

// Adds the step's hidden states to their embedding requests, and ends those whose
// prompt is complete with the pooled vector.
void Runner::pool(const std::vector<model::BatchRow>& rows, const std::vector<size_t>& owner) {
  const size_t E = model_->hparams().n_embd;
  size_t k = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (!rows[r].embd) continue;
    Active& a = *active_[owner[r]];
    const float* v = embd_.data() + (k++) * E;
    if (a.pooled.empty()) a.pooled.assign(E, 0.0);
    for (size_t i = 0; i < E; ++i) a.pooled[i] = a.req.pooling == model::Pooling::Mean ? a.pooled[i] + v[i] : v[i];
  }
  for (size_t s = 0; s < active_.size(); ++s) {
    Active* a = active_[s].get();
    if (!a || !a->embedding() || a->prompting()) continue;
    Event e;
    e.kind = Event::Kind::Done;
    e.done_reason = "stop";
    e.prompt_eval_count = a->evaluated;
    e.prompt_tokens = static_cast<int>(a->req.prompt.size());
    e.prompt_eval_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - a->start).count();
    const double n = a->req.pooling == model::Pooling::Mean ? static_cast<double>(a->req.prompt.size()) : 1.0;
    for (double x : a->pooled) e.embedding.push_back(static_cast<float>(x / n));
    finish(s, std::move(e));
  }
}

bool Runner::encode_step() {
  // The first waiting sequence's pooling, and every other of the same, while they fit.
  std::vector<size_t> slots;
  std::vector<std::vector<TokenId>> seqs;
  model::Pooling pooling = model::Pooling::None;
  size_t rows = 0;
  for (size_t s = 0; s < active_.size(); ++s) {
    Active* a = active_[s].get();
    if (!a || (!slots.empty() && (a->req.pooling != pooling || rows + a->req.prompt.size() > kEncoderRows))) continue;
    pooling = a->req.pooling;
    rows += a->req.prompt.size();
    slots.push_back(s);
    seqs.push_back(a->req.prompt);
  }
  if (slots.empty()) return false;
  std::vector<std::vector<float>> vectors;
  Status st;
  {
    const quant::ComputeTurns::Turn turn(opt_.turns);
    st = enc_->embed(seqs, pooling, vectors);
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    Active& a = *active_[slots[i]];
    Event e;
    if (!st) {
      e.kind = Event::Kind::Error;
      e.error = st.message();
    } else {
      e.kind = Event::Kind::Done;
      e.done_reason = "stop";
      e.prompt_eval_count = e.prompt_tokens = static_cast<int>(a.req.prompt.size());
      e.prompt_eval_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - a.start).count();
      e.embedding = std::move(vectors[i]);
    }
    finish(slots[i], std::move(e));
  }
  return true;
}

}  // namespace hearth::runner
