/* The backends of this runtime (runtime/backend.h): one row each. */
#include "runtime/backend.h"

#include <stdio.h>
#include <string.h>

#include "base/rt_error.h"

extern const Backend backend_cpu;  /* runtime/cpu/cpu_backend.c */
extern const Backend backend_cuda; /* runtime/cuda/cuda_backend.c */

static const Backend *const BACKENDS[] = {&backend_cpu, &backend_cuda};
#define NBACKENDS ((int)(sizeof BACKENDS / sizeof *BACKENDS))

const Backend *const *backend_all(int *n) {
    *n = NBACKENDS;
    return BACKENDS;
}

const Backend *backend_find(const char *name) {
    for (int i = 0; i < NBACKENDS; i++)
        if (!strcmp(BACKENDS[i]->name, name)) return BACKENDS[i];
    return NULL;
}

/* "a", "a or b", "a, b or c" */
static void list_names(const Backend *const *be, int n, char *buf, size_t cap) {
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(buf);
        const char *sep = i == 0 ? "" : i == n - 1 ? " or " : ", ";
        snprintf(buf + k, cap - k, "%s%s", sep, be[i]->name);
    }
}

const char *backend_names(void) {
    static char names[256];
    if (!names[0]) list_names(BACKENDS, NBACKENDS, names, sizeof names);
    return names;
}

const void *backend_code_image(const BackendCode *c, const char *name, int64_t *size) {
    for (int i = 0; i < c->nimages; i++)
        if (!strcmp(c->images[i].backend, name) && c->images[i].data && c->images[i].size > 0) {
            *size = c->images[i].size;
            return c->images[i].data;
        }
    *size = 0;
    return NULL;
}

int backend_code_kernels(const BackendCode *c) {
    for (int i = 0; i < NBACKENDS; i++) {
        int n = BACKENDS[i]->kernel_count(c);
        if (n > 0) return n;
    }
    return 0;
}

bool program_has_kernels(const Program *p) {
    for (int f = 0; f < p->nfuncs; f++)
        for (int s = 0; s < p->funcs[f].nsteps; s++)
            if (p->funcs[f].steps[s].kind == PS_KERNEL) return true;
    return false;
}

bool backend_check_code(const Backend *be, const Program *p, const BackendCode *c, char *err,
                        size_t errcap) {
    if (be->has_code(p, c)) return true;
    const Backend *can[NBACKENDS];
    int n = 0;
    for (int i = 0; i < NBACKENDS; i++)
        if (BACKENDS[i]->has_code(p, c)) can[n++] = BACKENDS[i];
    char names[256];
    list_names(can, n, names, sizeof names);
    if (!n) return rt_fail(err, errcap, "this executable holds no code for any backend");
    return rt_fail(err, errcap, "this executable was compiled without --target %s: it runs only "
                                "with --device %s", be->name, names);
}
