// CPU emulation: the runtime API header is the emulated runtime (see cuda_runtime.h here).
#pragma once

#include "cuda_runtime.h"
