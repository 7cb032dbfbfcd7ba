/* The safetensors reader (checkpoints, weights, igrc exec inputs). An
 * accepted file's tensors lie inside the input and tile its data section;
 * it writes and reads back unchanged. */
#include <string.h>

#include "runtime/io/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    StFile f;
    char err[512];
    if (!st_read_mem(data, size, "fuzz.safetensors", &f, err, sizeof err)) return 0;
    size_t total = 0;
    for (int i = 0; i < f.n; i++) total += f.tensors[i].nbytes;
    if (total > size) __builtin_trap();
    const char *path = fuzz_file(0, "w.safetensors", NULL, 0);
    if (st_write(path, f.tensors, f.n, f.meta, f.nmeta, err, sizeof err)) {
        StFile g;
        if (!st_read(path, &g, err, sizeof err) || g.n != f.n) __builtin_trap();
        for (int i = 0; i < f.n; i++) {
            const StTensor *t = st_find(&g, f.tensors[i].name);
            if (!t || t->nbytes != f.tensors[i].nbytes ||
                (t->nbytes && memcmp(t->data, f.tensors[i].data, t->nbytes)))
                __builtin_trap();
        }
        st_free(&g);
    }
    st_free(&f);
    return 0;
}
