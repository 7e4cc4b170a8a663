// Turns at the cores: work that runs a team of threads over every core (a model's forward
// pass, a quantizer's chunk of rows) takes a turn first, so that two such teams never run
// at once and oversubscribe the cores. First come, first served (a ticket lock), so a
// busy runner cannot starve a quantization nor the other way round. Lives here, in the
// lowest layer both the quantizer and the runners use; nothing in this folder needs it
// otherwise.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace hearth::quant {

class ComputeTurns {
 public:
  // Holds a turn for its lifetime; a null `turns` holds nothing.
  class Turn {
   public:
    explicit Turn(ComputeTurns* t) : t_(t) {
      if (t_) t_->acquire();
    }
    ~Turn() {
      if (t_) t_->release();
    }
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;

   private:
    ComputeTurns* t_;
  };

 private:
  void acquire() {
    std::unique_lock lock(mu_);
    const uint64_t mine = next_++;
    cv_.wait(lock, [&] { return serving_ == mine; });
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      ++serving_;
    }
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_ = 0, serving_ = 0;
};

}  // namespace hearth::quant
