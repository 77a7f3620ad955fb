// Kernel launches and dynamic shared memory, spelled once for nvcc and for the CPU emulation
// (FASTSIREN_CUDA_EMULATION, csrc/emulation/), which cannot parse <<<...>>> or extern __shared__.
//
//   FASTSIREN_LAUNCH(grid, block, smem_bytes, stream, kernel)(args...)
//       == kernel<<<grid, block, smem_bytes, stream>>>(args...)
//   FASTSIREN_DYNAMIC_SHARED(type, name, align)
//       == extern __shared__ __align__(align) type name[];  (usable as a `type*`)
#pragma once

#include <cuda_runtime.h>

#if defined(FASTSIREN_CUDA_EMULATION)
#define FASTSIREN_LAUNCH(grid, block, smem, stream, ...) \
  ::fastsiren_emu::launch((grid), (block), (smem), (stream), &__VA_ARGS__)
#define FASTSIREN_DYNAMIC_SHARED(type, name, align) \
  type* name = reinterpret_cast<type*>(::fastsiren_emu::dynamic_shared())
#else
#define FASTSIREN_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<(grid), (block), (smem), (stream)>>>
#define FASTSIREN_DYNAMIC_SHARED(type, name, align) extern __shared__ __align__(align) type name[]
#endif
