// CPU emulation of the part of CUDA the fastsiren kernels use (FASTSIREN_CUDA_EMULATE=1).
//
// Built only for the emulated extension (fastsiren/cuda_ext.py compiles csrc/*.cu as C++
// with -DFASTSIREN_CUDA_EMULATION and this folder first on the include path): the *same*
// kernel sources then run on CPU tensors, so the CPU test tier checks their indexing, tiling,
// barriers and jet math against the reference, as TRITON_INTERPRET=1 does for Triton.
//
// Execution model: a launch runs its blocks one after another on the calling OS thread; the
// threads of a block are fibers (ucontext) scheduled cooperatively. __syncthreads() yields
// to the scheduler, which resumes every fiber once per barrier phase, so a phase ends only
// when each live thread of the block has reached the barrier (a thread that has returned
// no longer counts, as on current GPUs). Phases alternate forward and reverse thread order,
// so a missing barrier changes the result whichever way round the hazard lies. __shared__ variables are function statics: shared
// by the threads of a block, and safe because blocks never overlap. Dynamic shared memory
// is filled with 0xff bytes (NaN) at every block start, so a read of a slot no thread wrote
// shows up in the results. Launch limits are checked as the runtime does (threads per block,
// grid size, dynamic shared memory above 48 KiB only after cudaFuncSetAttribute), and the
// error is returned by cudaGetLastError(). The emulated device has an H100's shared memory.
// Not emulated: warps (no warp intrinsics are used), streams (a launch is synchronous), timing.
// Launches from several OS threads take turns (the __shared__ statics are process-wide).
//
// Built with -fsanitize=address (FASTSIREN_CUDA_EMULATE=asan), every fiber switch is announced
// to AddressSanitizer, which then reports any out-of-bounds access of the kernels: to tensors,
// to shared memory, to their own stacks.
#pragma once

#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDeviceFunction = 98,
};

using cudaStream_t = struct FastsirenEmuStream*;

enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaDeviceAttr {
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __shared__ static

using std::max;
using std::min;

namespace fastsiren_emu {

// An H100's shared memory: opt-in per block (per SM: 1 KiB more), and the default per-launch limit.
constexpr int kSmemOptin = 232448;
constexpr size_t kSmemDefault = 48 * 1024;

// The emulated device's opt-in limit per block: an H100's, or FASTSIREN_CUDA_EMULATE_SMEM bytes
// (at least the 48 KiB default) to emulate a card with less (an A100: 166912; sm_86/89: 101376),
// whose kernels take other tiles; the per-SM limit is 1 KiB above it, as on those cards.
inline int smem_optin() {
  const char* env = std::getenv("FASTSIREN_CUDA_EMULATE_SMEM");
  if (env == nullptr || *env == '\0') return kSmemOptin;
  const long v = std::strtol(env, nullptr, 10);
  return v >= static_cast<long>(kSmemDefault) && v <= kSmemOptin ? static_cast<int>(v) : kSmemOptin;
}
constexpr size_t kStackBytes = 256 * 1024;

struct Fiber {
  ucontext_t ctx;
  dim3 tid;
  bool done = false;
  void* stack = nullptr;
  void* fake_stack = nullptr;  // AddressSanitizer's bookkeeping of a switched-out stack
};

struct Block {
  ucontext_t scheduler;
  std::vector<Fiber> fibers;
  size_t current = 0;
  dim3 block_idx, block_dim, grid_dim;
  unsigned char* smem = nullptr;
  const std::function<void()>* body = nullptr;
  void* scheduler_fake_stack = nullptr;
  const void* scheduler_stack = nullptr;
  size_t scheduler_stack_size = 0;
};

// Announce a switch to the stack [bottom, bottom + size) (fake == nullptr: the current fiber
// ends), and complete one on arrival, to AddressSanitizer; nothing without it.
inline void switch_start(void** fake, const void* bottom, size_t size) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}
inline void switch_finish(void* fake, const void** bottom_old, size_t* size_old) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_finish_switch_fiber(fake, bottom_old, size_old);
#else
  (void)fake, (void)bottom_old, (void)size_old;
#endif
}

inline thread_local Block* g_block = nullptr;
inline thread_local cudaError_t g_last_error = cudaSuccess;
inline std::map<const void*, size_t> g_smem_limit;  // cudaFuncSetAttribute's dynamic shared memory
// __shared__ statics are process-wide: launches from several OS threads take turns.
inline std::mutex g_launch_mutex;

inline Block& block() {
  if (g_block == nullptr) std::abort();  // device code called outside an emulated launch
  return *g_block;
}
inline const dim3& thread_idx() { return block().fibers[block().current].tid; }
inline unsigned char* dynamic_shared() { return block().smem; }

inline void fiber_entry() {
  Block& b = block();
  switch_finish(nullptr, &b.scheduler_stack, &b.scheduler_stack_size);
  (*b.body)();
  b.fibers[b.current].done = true;
  switch_start(nullptr, b.scheduler_stack, b.scheduler_stack_size);  // this fiber's stack is done
  swapcontext(&b.fibers[b.current].ctx, &b.scheduler);              // never resumed
}

inline void syncthreads() {
  Block& b = block();
  Fiber& f = b.fibers[b.current];
  switch_start(&f.fake_stack, b.scheduler_stack, b.scheduler_stack_size);
  swapcontext(&f.ctx, &b.scheduler);
  switch_finish(f.fake_stack, &b.scheduler_stack, &b.scheduler_stack_size);
}

// A fresh context that starts fiber_entry on `stack`. Kept out of line: getcontext returns
// twice, which would make the compiler distrust every local of the caller.
[[gnu::noinline]] inline void init_fiber(Fiber& f, void* stack) {
  f.done = false;
  f.stack = stack;
  f.fake_stack = nullptr;
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = stack;
  f.ctx.uc_stack.ss_size = kStackBytes;
  f.ctx.uc_link = nullptr;
  makecontext(&f.ctx, fiber_entry, 0);
}

// Fiber stacks, reused across launches on this OS thread.
inline std::vector<std::unique_ptr<char[]>>& stacks(size_t count) {
  static thread_local std::vector<std::unique_ptr<char[]>> pool;
  while (pool.size() < count) pool.emplace_back(new char[kStackBytes]);
  return pool;
}

inline cudaError_t run(dim3 grid, dim3 block_dim, size_t smem_bytes, const void* kernel,
                       const std::function<void()>& body) {
  const uint64_t threads = uint64_t(block_dim.x) * block_dim.y * block_dim.z;
  if (threads == 0 || threads > 1024 || block_dim.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 2147483647u || grid.y > 65535u || grid.z > 65535u)
    return cudaErrorInvalidConfiguration;
  if (g_block != nullptr) return cudaErrorInvalidConfiguration;  // no dynamic parallelism
  const std::lock_guard<std::mutex> lock(g_launch_mutex);
  auto lim = g_smem_limit.find(kernel);
  if (smem_bytes > (lim != g_smem_limit.end() ? lim->second : kSmemDefault)) return cudaErrorInvalidValue;

  std::vector<unsigned char> smem(std::max<size_t>(smem_bytes, 16));
  auto& pool = stacks(threads);
  Block b;
  b.block_dim = block_dim;
  b.grid_dim = grid;
  b.smem = smem.data();
  b.body = &body;
  b.fibers.resize(threads);
  g_block = &b;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        b.block_idx = dim3(bx, by, bz);
        std::fill(smem.begin(), smem.end(), static_cast<unsigned char>(0xff));
        for (uint64_t t = 0; t < threads; ++t) {
          Fiber& f = b.fibers[t];
          f.tid = dim3(static_cast<unsigned>(t % block_dim.x), static_cast<unsigned>(t / block_dim.x % block_dim.y),
                       static_cast<unsigned>(t / (uint64_t(block_dim.x) * block_dim.y)));
          init_fiber(f, pool[t].get());
        }
        // One pass per barrier phase: every live fiber runs to its next barrier or its end,
        // in thread order on even phases and in reverse on odd ones, so that a missing
        // barrier shows whichever thread of a pair runs first on the GPU.
        bool reverse = false;
        for (bool live = true; live; reverse = !reverse) {
          live = false;
          for (uint64_t i = 0; i < threads; ++i) {
            const uint64_t t = reverse ? threads - 1 - i : i;
            if (b.fibers[t].done) continue;
            b.current = t;
            switch_start(&b.scheduler_fake_stack, b.fibers[t].stack, kStackBytes);
            swapcontext(&b.scheduler, &b.fibers[t].ctx);
            switch_finish(b.scheduler_fake_stack, nullptr, nullptr);
            live = live || !b.fibers[t].done;
          }
        }
      }
  g_block = nullptr;
  return cudaSuccess;
}

// kernel<<<grid, block, smem, stream>>>(args...) is spelled
// FASTSIREN_LAUNCH(grid, block, smem, stream, kernel)(args...) in the sources (csrc/launch.cuh).
template <typename... P>
struct Launch {
  dim3 grid, block_dim;
  size_t smem;
  void (*kernel)(P...);
  template <typename... A>
  void operator()(A&&... args) const {
    std::function<void()> body = [&] { kernel(static_cast<P>(args)...); };
    const cudaError_t err = run(grid, block_dim, smem, reinterpret_cast<const void*>(kernel), body);
    if (err != cudaSuccess) g_last_error = err;
  }
};

template <typename... P>
Launch<P...> launch(dim3 grid, dim3 block_dim, size_t smem, cudaStream_t, void (*kernel)(P...)) {
  return Launch<P...>{grid, block_dim, smem, kernel};
}

}  // namespace fastsiren_emu

#define threadIdx (::fastsiren_emu::thread_idx())
#define blockIdx (::fastsiren_emu::block().block_idx)
#define blockDim (::fastsiren_emu::block().block_dim)
#define gridDim (::fastsiren_emu::block().grid_dim)

inline void __syncthreads() { ::fastsiren_emu::syncthreads(); }

// Blocks never overlap and fibers switch only at barriers: a plain read-modify-write is atomic.
template <typename T>
inline T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}

inline cudaError_t cudaGetLastError() {
  const cudaError_t err = ::fastsiren_emu::g_last_error;
  ::fastsiren_emu::g_last_error = cudaSuccess;
  return err;
}

inline const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error (CPU emulation)";
    case cudaErrorInvalidValue: return "invalid argument (CPU emulation)";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument (CPU emulation)";
    case cudaErrorInvalidDeviceFunction: return "invalid device function (CPU emulation)";
  }
  return "unknown error (CPU emulation)";
}

inline cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return cudaErrorInvalidValue;
  switch (attr) {
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = ::fastsiren_emu::smem_optin(); return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = ::fastsiren_emu::smem_optin() + 1024; return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}

template <typename... P>
inline cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > ::fastsiren_emu::smem_optin())
    return cudaErrorInvalidValue;
  const std::lock_guard<std::mutex> lock(::fastsiren_emu::g_launch_mutex);
  ::fastsiren_emu::g_smem_limit[reinterpret_cast<const void*>(kernel)] = static_cast<size_t>(value);
  return cudaSuccess;
}
