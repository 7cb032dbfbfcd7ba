#include "runtime/init.h"

#include "base/philox.h"

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
