/* The data readers: the input's first byte picks IDX (one file, plain or
 * gzip) or a CIFAR-10 directory (test_batch.bin); an accepted data set has
 * consistent sizes. */
#include <string.h>

#include "runtime/io/dataset.h"
#include "runtime/io/idx.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char err[512];
    if (data[0] & 1) {
        IdxArray a;
        if (idx_load(fuzz_file(0, "f-idx3-ubyte", data + 1, size - 1), &a, err, sizeof err)) {
            size_t n = 1;
            for (int i = 0; i < a.rank; i++) n *= (size_t)a.dims[i];
            if (n != a.n) __builtin_trap();
        }
        idx_free(&a);
        return 0;
    }
    fuzz_file(1, "test_batch.bin", data + 1, size - 1);
    Dataset d;
    if (dataset_load(fuzz_dir(), NULL, false, 0, &d, err, sizeof err)) {
        if (d.n < 1 || d.c != 3 || d.h != 32 || d.w != 32) __builtin_trap();
        for (int64_t i = 0; i < d.n; i++)
            if (d.y[i] < 0 || d.y[i] > 9) __builtin_trap();
        dataset_free(&d);
    }
    return 0;
}
