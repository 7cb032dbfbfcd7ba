/* The code generators of this build (codegen/backend_compile.h): one row
 * each. */
#include "codegen/backend_compile.h"

#include <stdio.h>
#include <string.h>

extern const CodegenBackend codegen_cpu; /* codegen/cpu/cpu_compile.c */
#ifdef IGRC_HAVE_CUDA
extern const CodegenBackend codegen_cuda; /* codegen/cuda/cuda_target.c */
#endif

static const CodegenBackend *const TARGETS[] = {
    &codegen_cpu,
#ifdef IGRC_HAVE_CUDA
    &codegen_cuda,
#endif
};
#define NTARGETS ((int)(sizeof TARGETS / sizeof *TARGETS))

const CodegenBackend *codegen_backend_find(const char *name) {
    for (int i = 0; i < NTARGETS; i++)
        if (!strcmp(TARGETS[i]->name, name)) return TARGETS[i];
    return NULL;
}

const char *codegen_backend_names(void) {
    static char names[256];
    if (names[0]) return names;
    for (int i = 0; i < NTARGETS; i++) {
        size_t k = strlen(names);
        snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "", TARGETS[i]->name);
    }
    return names;
}

bool codegen_targets(const char *name, const CodegenOptions *o, const CodegenBackend *out[2],
                     int *n, Diag *d) {
    const CodegenBackend *t = codegen_backend_find(name);
    if (!t)
        return diag_error(d, EXIT_BADINPUT, "target '%s' is not available in this igrc "
                                            "(targets: %s)", name, codegen_backend_names());
    if (o->arch && !t->default_arch)
        return diag_error(d, EXIT_BADINPUT, "target %s has no GPU architectures (--gpu-arch)", name);
    if (t->check && !t->check(o, d)) return false;
    *n = 0;
    out[(*n)++] = &codegen_cpu;
    if (t != &codegen_cpu) out[(*n)++] = t;
    return true;
}
