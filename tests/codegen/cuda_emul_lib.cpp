/* The CUDA library (codegen/cuda/cuda_lib.cu, without IGRC_TF32) for the
 * emulation harness (cuda_emul.h): compiled once with the tests
 * (tests/CMakeLists.txt, the flags of cuda_emul.c's modules) instead of in
 * every emulated module, which took seconds each. emu_lib runs one planned
 * launch of an entry by name. */
#include "tests/codegen/cuda_emulation.h"

#include "codegen/cuda/cuda_prelude.cuh"

#include "codegen/cuda/cuda_lib.cu"

typedef void (*EmuLibEntry)(void *, const void *, const void *, void *, IgrcLibArgs);

#define EMU_ENTRY(base) {"igrc_" #base "_f32", igrc_##base##_f32}, {"igrc_" #base "_f64", igrc_##base##_f64}

static const struct {
    const char *name;
    EmuLibEntry fn;
} emu_lib_table[] = {
    EMU_ENTRY(matmul),          EMU_ENTRY(conv2d),           EMU_ENTRY(conv2d_bwd_data),
    EMU_ENTRY(conv2d_bwd_filter), EMU_ENTRY(conv2d_bwd_filter_sum), EMU_ENTRY(maxpool2d),
    EMU_ENTRY(maxpool2d_bwd),   EMU_ENTRY(maxpool2d_select), EMU_ENTRY(avgpool2d),
    EMU_ENTRY(avgpool2d_bwd),
};

extern "C" int emu_lib(const char *name, const unsigned *grid, unsigned threads, void *out, const void *in0,
                       const void *in1, void *scratch, const long long *args) {
    for (const auto &e : emu_lib_table) {
        if (strcmp(e.name, name)) continue;
        IgrcLibArgs a;
        memcpy(a.a, args, sizeof a.a);
        emu_launch(dim3{grid[0], grid[1], grid[2]}, threads, true, [&] { e.fn(out, in0, in1, scratch, a); });
        return 1;
    }
    return 0;
}
