// The runner without HTTP: sequences decoded together give each the text it gets alone,
// prompt prefixes are reused, cancelled sequences free their slots, the queue is bounded;
// the model cache loads, keeps, expires and evicts.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "runner/model_cache.h"
#include "testdata.h"

namespace hearth::runner {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const model::Model> load(const char* rel) {
  auto m = model::Model::load((test::testdata_dir() / rel).string());
  EXPECT_TRUE(m.ok()) << m.message();
  return std::shared_ptr<const model::Model>(std::move(m.value()));
}

// Every event of a sequence until Done/Error: the text, and the final event.
struct Outcome {
  std::string text;
  Event done;
  int events = 0;
};
Outcome drain(Sequence& s) {
  Outcome o;
  Event e;
  while (s.next(&e, 20s)) {
    ++o.events;
    if (e.kind == Event::Kind::Text) {
      o.text += e.text;
      continue;
    }
    o.done = e;
    return o;
  }
  ADD_FAILURE() << "no Done event in 20 s";
  return o;
}

model::GenerateOptions greedy(int n) {
  model::GenerateOptions o;
  o.sampling.temperature = 0;
  o.sampling.repeat_penalty = 1.0f;
  o.num_predict = n;
  return o;
}

std::string alone(const model::Model& m, const std::vector<TokenId>& prompt, const model::GenerateOptions& o, int n_ctx,
                  model::KvType kv) {
  model::Context ctx(m, n_ctx, 1, kv);
  auto r = model::generate(ctx, prompt, o);
  EXPECT_TRUE(r.ok()) << r.message();
  return r.ok() ? r.value().text : "";
}

TEST(Runner, ConcurrentSequencesGetTheTextTheyGetAlone) {
  auto m = load("models/stories260K.gguf");
  for (model::KvType kv : {model::KvType::F16, model::KvType::F32}) {
    RunnerOptions ro;
    ro.n_ctx = 256;
    ro.parallel = 4;
    ro.threads = 2;
    ro.kv = kv;
    ro.step_rows = 16;  // prompt chunks of several steps beside decoding sequences
    Runner r(m, ro);
    const char* prompts[] = {"Once upon a time", "The little dog", "Lily wanted to play with her friend Tom in the park",
                             "One day", "Tim and Sam went to the big", "She said", "The sun was hot and the birds",
                             "Mom gave Ben a red ball because"};
    std::vector<std::shared_ptr<Sequence>> seqs;
    std::vector<std::vector<TokenId>> toks;
    for (const char* p : prompts) {
      toks.push_back(m->vocab().tokenize(p, true, true).value());
      SeqRequest req{toks.back(), greedy(60), -1, nullptr};
      auto s = r.submit(req);
      ASSERT_TRUE(s.ok()) << s.message();
      seqs.push_back(s.value());
    }
    for (size_t i = 0; i < seqs.size(); ++i) {
      const Outcome o = drain(*seqs[i]);
      EXPECT_EQ(o.text, alone(*m, toks[i], greedy(60), 256, kv)) << prompts[i];
      EXPECT_EQ(o.done.kind, Event::Kind::Done);
      // The first four start in empty slots; later ones may reuse a finished one's BOS.
      EXPECT_LE(o.done.prompt_eval_count, static_cast<int>(toks[i].size()));
      EXPECT_GE(o.done.prompt_eval_count, static_cast<int>(toks[i].size()) - (i < 4 ? 0 : 1));
      EXPECT_GT(o.done.eval_count, 0);
      EXPECT_EQ(o.done.context.size(), toks[i].size() + static_cast<size_t>(o.done.eval_count) - (o.done.done_reason == "stop"));
    }
    EXPECT_EQ(r.busy(), 0u);
  }
}

TEST(Runner, AChatsNextTurnEvaluatesOnlyItsNewTokens) {
  auto m = load("models/stories260K.gguf");
  RunnerOptions ro;
  ro.n_ctx = 256;
  ro.parallel = 2;
  ro.threads = 1;
  Runner r(m, ro);
  const auto first = m->vocab().tokenize("Once upon a time there was a girl named Lily", true, true).value();
  const Outcome a = drain(*r.submit({first, greedy(20), -1, nullptr}).value());
  ASSERT_EQ(a.done.kind, Event::Kind::Done);
  std::vector<TokenId> second = a.done.context;
  const auto more = m->vocab().tokenize(" She liked to", false, false).value();
  second.insert(second.end(), more.begin(), more.end());
  const Outcome b = drain(*r.submit({second, greedy(20), -1, nullptr}).value());
  ASSERT_EQ(b.done.kind, Event::Kind::Done) << b.done.error;
  // The new tokens, and the first turn's last token, sampled but never evaluated.
  EXPECT_EQ(b.done.prompt_eval_count, static_cast<int>(more.size()) + 1);
  EXPECT_EQ(b.text, alone(*m, second, greedy(20), 256, model::KvType::F16));
  // The same prompt again: everything but its last token is reused.
  const Outcome c = drain(*r.submit({second, greedy(20), -1, nullptr}).value());
  EXPECT_EQ(c.done.prompt_eval_count, 1);
  EXPECT_EQ(c.text, b.text);
}

TEST(Runner, CancelledSequencesFreeTheirSlotsAndTheQueueIsBounded) {
  auto m = load("models/stories260K.gguf");
  RunnerOptions ro;
  ro.n_ctx = 128;
  ro.parallel = 1;
  ro.threads = 1;
  ro.max_queue = 1;
  Runner r(m, ro);
  const auto p = m->vocab().tokenize("Once upon a time", true, true).value();
  model::GenerateOptions endless = greedy(-1);
  endless.stop = {"never appears \x01"};
  auto long_one = r.submit({p, endless, -1, nullptr});
  ASSERT_TRUE(long_one.ok());
  Event e;
  ASSERT_TRUE(long_one.value()->next(&e, 20s));  // running: it holds the only slot
  auto queued = r.submit({p, greedy(5), -1, nullptr});
  ASSERT_TRUE(queued.ok());
  auto refused = r.submit({p, greedy(5), -1, nullptr});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.message(), kServerBusy);
  long_one.value()->cancel();
  const Outcome o = drain(*queued.value());
  EXPECT_EQ(o.done.kind, Event::Kind::Done);
  EXPECT_EQ(o.done.done_reason, "length");
  EXPECT_EQ(o.done.eval_count, 5);
  EXPECT_EQ(r.busy(), 0u);
}

TEST(Runner, ContextShiftAndLengthAndLogprobs) {
  auto m = load("models/stories260K.gguf");
  RunnerOptions ro;
  ro.n_ctx = 32;
  ro.parallel = 2;
  ro.threads = 1;
  Runner r(m, ro);
  const auto p = m->vocab().tokenize("Once upon a time", true, true).value();
  model::GenerateOptions o = greedy(80);
  o.stop = {"\x01"};
  const Outcome shifted = drain(*r.submit({p, o, -1, nullptr}).value());
  EXPECT_EQ(shifted.text, alone(*m, p, o, 32, model::KvType::F16));
  o.shift = false;
  const Outcome stopped = drain(*r.submit({p, o, -1, nullptr}).value());
  EXPECT_EQ(stopped.done.done_reason, "length");
  EXPECT_EQ(stopped.done.eval_count, 32 - static_cast<int>(p.size()) + 1);
  // A prompt longer than the context with shifting off is refused at submit.
  std::vector<TokenId> huge(40, p.back());
  auto refused = r.submit({huge, o, -1, nullptr});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("more than the context's 32 free positions"), std::string::npos) << refused.message();
  // Log probabilities: one per token, the chosen one first among the top alternatives (greedy).
  auto s = r.submit({p, greedy(5), 3, nullptr}).value();
  int n = 0;
  Event e;
  while (s->next(&e, 20s) && e.kind == Event::Kind::Text) {
    ASSERT_EQ(e.logprobs.size(), 1u);
    ASSERT_EQ(e.logprobs[0].top.size(), 3u);
    EXPECT_EQ(e.logprobs[0].top[0].first, e.logprobs[0].token);
    EXPECT_LE(e.logprobs[0].logprob, 0.f);
    EXPECT_GE(e.logprobs[0].top[0].second, e.logprobs[0].top[1].second);
    ++n;
  }
  EXPECT_EQ(n, 5);
  EXPECT_EQ(e.kind, Event::Kind::Done);
  // At temperature T they are those of logits / T (what the sampler draws from): the gaps
  // between the alternatives shrink by T.
  model::GenerateOptions hot = greedy(1);
  hot.sampling.temperature = 2.0f;
  hot.sampling.seed = 7;
  Event cold_e, hot_e;
  auto cold = r.submit({p, greedy(1), 3, nullptr}).value();
  ASSERT_TRUE(cold->next(&cold_e, 20s));
  auto warm = r.submit({p, hot, 3, nullptr}).value();
  ASSERT_TRUE(warm->next(&hot_e, 20s));
  ASSERT_EQ(cold_e.logprobs.size(), 1u);
  ASSERT_EQ(hot_e.logprobs.size(), 1u);
  const auto& c = cold_e.logprobs[0].top;
  const auto& h = hot_e.logprobs[0].top;
  for (size_t i = 0; i < 3; ++i) ASSERT_EQ(c[i].first, h[i].first);  // the same order
  for (size_t i = 1; i < 3; ++i) EXPECT_NEAR(h[0].second - h[i].second, (c[0].second - c[i].second) / 2, 1e-4);
}

TEST(Runner, PromptSharesOfAStep) {
  using V = std::vector<size_t>;
  EXPECT_EQ(prompt_shares({2000, 64}, 64), (V{32, 32}));  // a short prompt beside a long one: a micro-batch each
  EXPECT_EQ(prompt_shares({10}, 64), (V{10}));
  EXPECT_EQ(prompt_shares({1000}, 64), (V{64}));
  EXPECT_EQ(prompt_shares({1000, 10}, 64), (V{54, 10}));
  EXPECT_EQ(prompt_shares({}, 64), V{});
  // Eight prompts sent together: by size, so that they finish in the same step.
  const V eight = prompt_shares({150, 160, 140, 150, 155, 145, 150, 150}, 64);
  EXPECT_EQ(eight, (V{8, 8, 7, 8, 8, 7, 8, 8}));  // 64 * r / 1200, rounded down
  // Every case: within the budget, within what is left, everyone served while rows last.
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    V rem(1 + rng() % 12);
    for (size_t& r : rem) r = 1 + rng() % 3000;
    const size_t budget = 32 + rng() % 100;
    const V take = prompt_shares(rem, budget);
    size_t sum = 0;
    for (size_t i = 0; i < rem.size(); ++i) {
      EXPECT_LE(take[i], rem[i]);
      EXPECT_GE(take[i], 1u);
      sum += take[i];
    }
    EXPECT_LE(sum, budget);
  }
}

TEST(ModelCache, LoadsKeepsExpiresAndEvicts) {
  const std::string a = (test::testdata_dir() / "models/stories260K.gguf").string(),
                    b = (test::testdata_dir() / "models/TinyStories-656K-Q8_0.gguf").string();
  CacheOptions co;
  co.max_loaded = 1;
  co.keep_alive = 300ms;
  ModelCache cache(co);
  RunnerOptions ro;
  ro.n_ctx = 64;
  ro.parallel = 1;
  ro.threads = 1;
  {
    auto l = cache.acquire({"sha256:a", a, ro}, "a:latest", std::nullopt);
    ASSERT_TRUE(l.ok()) << l.message();
    auto again = cache.acquire({"sha256:a", a, ro}, "a:latest", std::nullopt);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(&l.value().runner(), &again.value().runner());  // shared, not loaded twice
    ASSERT_EQ(cache.loaded().size(), 1u);
    EXPECT_EQ(cache.loaded()[0].name, "a:latest");
    EXPECT_EQ(cache.loaded()[0].context_length, 64);
    // Another model while a is in use: over the maximum, and nothing is idle.
    auto busy = cache.acquire({"sha256:b", b, ro}, "b:latest", std::nullopt);
    ASSERT_FALSE(busy.ok());
    EXPECT_NE(busy.message().find("OLLAMA_MAX_LOADED_MODELS=1"), std::string::npos) << busy.message();
  }
  EXPECT_EQ(cache.loaded().size(), 1u);  // idle, not yet expired
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(cache.loaded().size(), 0u);  // expired by the keep-alive
  {
    auto l = cache.acquire({"sha256:a", a, ro}, "a:latest", kForever);
    ASSERT_TRUE(l.ok());
  }
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(cache.loaded().size(), 1u);  // forever
  EXPECT_TRUE(cache.loaded()[0].forever);
  {
    auto l = cache.acquire({"sha256:b", b, ro}, "b:latest", 0ns);  // evicts idle a; unloads after use
    ASSERT_TRUE(l.ok()) << l.message();
    ASSERT_EQ(cache.loaded().size(), 1u);
    EXPECT_EQ(cache.loaded()[0].digest, "sha256:b");
  }
  EXPECT_EQ(cache.loaded().size(), 0u);
  // Other options reload.
  auto l1 = cache.acquire({"sha256:a", a, ro}, "a", std::nullopt);
  ASSERT_TRUE(l1.ok());
  l1 = ModelCache::Lease();
  RunnerOptions bigger = ro;
  bigger.n_ctx = 128;
  auto l2 = cache.acquire({"sha256:a", a, bigger}, "a", std::nullopt);
  ASSERT_TRUE(l2.ok());
  EXPECT_EQ(l2.value().runner().options().n_ctx, 128);
  ASSERT_EQ(cache.loaded().size(), 1u);
  EXPECT_EQ(cache.loaded()[0].context_length, 128);
}

TEST(ModelCache, TooLargeForMemoryIsAClearError) {
  CacheOptions co;
  co.memory_limit = 1 << 20;
  ModelCache cache(co);
  RunnerOptions ro;
  ro.n_ctx = 4096;
  auto l = cache.acquire({"sha256:b", (test::testdata_dir() / "models/TinyStories-656K-Q8_0.gguf").string(), ro}, "b", std::nullopt);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.message().rfind("model requires more system memory (", 0), 0u) << l.message();
  EXPECT_NE(l.message().find(") than is available (1.0 MiB)"), std::string::npos) << l.message();
}

// Turns at the cores go first come, first served: a runner stepping in a loop cannot
// starve a quantization waiting for its turn.
TEST(ComputeTurns, FirstComeFirstServed) {
  quant::ComputeTurns turns;
  std::vector<int> order;
  std::mutex mu;
  std::atomic<int> waiting{0};
  std::vector<std::thread> others;
  {
    const quant::ComputeTurns::Turn mine(&turns);
    for (int i = 0; i < 3; ++i) {
      others.emplace_back([&, i] {
        ++waiting;
        const quant::ComputeTurns::Turn t(&turns);
        std::lock_guard lock(mu);
        order.push_back(i);
      });
      while (waiting.load() < i + 1) std::this_thread::yield();
      std::this_thread::sleep_for(20ms);  // thread i is queued before thread i + 1 starts
    }
    EXPECT_TRUE(order.empty());  // nobody ran while the turn was held
  }
  for (auto& t : others) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  const quant::ComputeTurns::Turn none(nullptr);  // a null gate holds nothing
}

TEST(KeepAlive, AsOllamaParsesIt) {
  EXPECT_EQ(parse_keep_alive(42.0).value(), 42s);
  EXPECT_EQ(parse_keep_alive(42.5).value(), 42500ms);
  EXPECT_EQ(parse_keep_alive(-1.0).value(), kForever);
  EXPECT_EQ(parse_keep_alive(std::string("5m")).value(), 5min);
  EXPECT_EQ(parse_keep_alive(std::string("1h30m")).value(), 90min);
  EXPECT_EQ(parse_keep_alive(std::string("0")).value(), 0s);
  EXPECT_EQ(parse_keep_alive(std::string("1.5s")).value(), 1500ms);
  EXPECT_EQ(parse_keep_alive(std::string("-1m")).value(), kForever);
  EXPECT_EQ(parse_keep_alive(1e15).value(), kForever);  // past a hundred years
  EXPECT_EQ(parse_keep_alive(std::string("2000000h")).value(), kForever);
  EXPECT_EQ(parse_keep_alive(std::string("-1")).message(), "time: missing unit in duration \"-1\"");
  EXPECT_EQ(parse_keep_alive(std::string("5d")).message(), "time: unknown unit \"d\" in duration \"5d\"");
  EXPECT_EQ(parse_keep_alive(std::string("")).message(), "time: invalid duration \"\"");
  EXPECT_EQ(parse_keep_alive(std::string("m")).message(), "time: invalid duration \"m\"");
}

}  // namespace
}  // namespace hearth::runner
