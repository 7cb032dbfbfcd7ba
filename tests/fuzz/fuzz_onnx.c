/* The ONNX importer (igrc import). Any input is converted or rejected with
 * a message naming the file; an accepted model's weights hold their
 * shapes' bytes, and its graph file loads (or fails) in the frontend
 * without a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "import/onnx.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    OnnxOptions opt = {.net_name = "net", .range = {0, 1}};
    OnnxImport imp;
    char err[2048];
    if (!onnx_import_mem(data, size, "fuzz.onnx", &opt, &imp, err, sizeof err)) {
        if (strncmp(err, "fuzz.onnx: ", 11) != 0) __builtin_trap();
        return 0;
    }
    for (int i = 0; i < imp.nweights; i++) {
        size_t numel = 1;
        for (int k = 0; k < imp.weights[i].rank; k++) numel *= (size_t)imp.weights[i].shape[k];
        if (imp.weights[i].nbytes != 4 * numel) __builtin_trap();
    }
    char *text = cJSON_PrintUnformatted(imp.doc);
    const char *path = fuzz_file(0, "net.json", (const uint8_t *)text, strlen(text));
    free(text);
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(path, NULL, &d);
    if (m) module_free(m);
    onnx_import_free(&imp);
    return 0;
}
