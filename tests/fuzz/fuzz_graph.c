/* The graph-file reader (JSON -> IR): the input is up to four files
 * separated by lines "----": main.json and inc1.json ... inc3.json, which
 * main.json may include. Every accepted module must verify. */
#include <stdio.h>
#include <string.h>

#include "frontend/frontend.h"
#include "ir/shape.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[4] = {"main.json", "inc1.json", "inc2.json", "inc3.json"};
    const uint8_t *p = data, *end = data + size;
    for (int k = 0; k < 4; k++) {
        const uint8_t *sep = NULL;
        for (const uint8_t *q = p; q + 6 <= end && !sep; q++)
            if (!memcmp(q, "\n----\n", 6)) sep = q;
        const uint8_t *stop = sep && k < 3 ? sep : end;
        fuzz_file(k, names[k], p, (size_t)(stop - p));
        p = stop == end ? end : stop + 6;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/main.json", fuzz_dir());
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(path, NULL, &d);
    if (m) {
        Diag v;
        diag_init(&v);
        if (!ir_verify(m, &v)) __builtin_trap(); /* the frontend made invalid IR */
        module_free(m);
    }
    return 0;
}
