/* runtime/cuda_api.h against the CUDA toolkit's cuda.h (built only where the
 * toolkit is installed): every constant has cuda.h's value, every type its
 * size, every function cuda.h's prototype, and every symbol is the name
 * cuda.h's macros give the function (cuMemAlloc -> cuMemAlloc_v2). The
 * value and prototype checks are compile-time: a mismatch fails the build. */
#include <cuda.h>
#define IGRC_CUDA_API_LISTS_ONLY
#include "runtime/cuda/cuda_api.h"

#include <criterion/criterion.h>
#include <string.h>

#define CHECK_VALUE(name, value) _Static_assert((name) == (value), #name " differs from cuda.h");
CUDA_API_CONSTANTS(CHECK_VALUE)

/* In this file the lists' parameter types are cuda.h's own. */
#define CHECK_PROTOTYPE(name, symbol, params)                                          \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&name), CUresult(*) params), \
                   #name ": prototype differs from cuda.h");
CUDA_API_FUNCTIONS(CHECK_PROTOTYPE)

/* runtime/cuda_api.h's own types: 4-byte ints for the enums and CUdevice,
 * 8 bytes for CUdeviceptr, pointers for handles. */
_Static_assert(sizeof(CUresult) == sizeof(int) && sizeof(CUdevice) == sizeof(int) &&
                   sizeof(CUdevice_attribute) == sizeof(int) &&
                   sizeof(CUfunction_attribute) == sizeof(int) &&
                   sizeof(CUjit_option) == sizeof(int) &&
                   sizeof(CUstreamCaptureMode) == sizeof(int),
               "an enum of cuda.h is not int-sized");
_Static_assert(__builtin_types_compatible_p(CUdeviceptr, unsigned long long),
               "CUdeviceptr is not unsigned long long");

#define STR(x) #x
#define EXPANDED(x) STR(x)

Test(cuda_api, symbols_are_the_names_cuda_h_macros_give) {
    int n = 0;
#define CHECK_SYMBOL(name, symbol, params)                                                 \
    cr_expect_str_eq(EXPANDED(name), #symbol, "%s: cuda.h calls it %s, cuda_api.h says %s", \
                     #name, EXPANDED(name), #symbol);                                   \
    n++;
    CUDA_API_FUNCTIONS(CHECK_SYMBOL)
    cr_expect_eq(n, 35, "the runtime resolves 35 entry points");
}

Test(cuda_api, header_is_the_one_checked) {
    cr_expect_geq(CUDA_VERSION, 12000, "cuda.h older than CUDA 12: %d", CUDA_VERSION);
}
