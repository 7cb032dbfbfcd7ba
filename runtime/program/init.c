#include "runtime/program/init.h"

#include <stdlib.h>

#include "base/philox.h"
#include "runtime/program/program.h"

void rt_init_fill(double *out, int64_t n, RtInitKind kind, double a, uint32_t seed,
                  uint32_t stream) {
    for (int64_t i = 0; i < n; i++) {
        switch (kind) {
        case RT_INIT_ZEROS: out[i] = 0.0; break;
        case RT_INIT_ONES: out[i] = 1.0; break;
        case RT_INIT_UNIFORM:
            out[i] = a * (2.0 * philox_uniform(seed, 0, stream, (uint64_t)i) - 1.0);
            break;
        case RT_INIT_NORMAL: out[i] = a * philox_normal(seed, 0, stream, (uint64_t)i); break;
        }
    }
}

uint32_t rt_init_stream(const char *name) {
    uint32_t h = 2166136261u;
    for (; *name; name++) h = (h ^ (uint8_t)*name) * 16777619u;
    return h;
}

bool program_init_param(const PParam *pp, void *dst, uint32_t seed) {
    int64_t n = ptensor_numel(&pp->t);
    if (n <= 0) return true;
    uint32_t stream = rt_init_stream(pp->t.name);
    if (pp->t.dtype == PD_F64) {
        rt_init_fill(dst, n, (RtInitKind)pp->init_kind, pp->init_a, seed, stream);
        return true;
    }
    double *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) return false;
    rt_init_fill(tmp, n, (RtInitKind)pp->init_kind, pp->init_a, seed, stream);
    for (int64_t k = 0; k < n; k++) {
        double v = tmp[k];
        switch (pp->t.dtype) {
        case PD_F32: ((float *)dst)[k] = (float)v; break;
        case PD_I32:
            ((int32_t *)dst)[k] = v >= 2147483647.0    ? INT32_MAX
                                : v <= -2147483648.0   ? INT32_MIN
                                : v == v               ? (int32_t)v
                                                       : 0;
            break;
        case PD_I64:
            ((int64_t *)dst)[k] = v >= 9.2233720368547758e18  ? INT64_MAX
                                : v <= -9.2233720368547758e18 ? INT64_MIN
                                : v == v                      ? (int64_t)v
                                                              : 0;
            break;
        case PD_BOOL: ((unsigned char *)dst)[k] = v != 0.0; break;
        case PD_F64: break;
        }
    }
    free(tmp);
    return true;
}
