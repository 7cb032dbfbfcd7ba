/* Importing ONNX models (docs/onnx.md): an ONNX file (opsets 13 to 18)
 * becomes a graph file's network section plus its weights as safetensors. */
#ifndef IGRC_IMPORT_ONNX_H
#define IGRC_IMPORT_ONNX_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "runtime/io/safetensors.h"

typedef struct {
    cJSON *doc;        /* the graph file: igrc, description, inputs, networks */
    StTensor *weights; /* named like the graph's parameters, F32 */
    int nweights;
    long long nparams; /* elements of the trainable parameters */
} OnnxImport;

typedef struct {
    const char *net_name; /* the network's name in the graph file */
    double range[2];      /* the input's value range */
} OnnxOptions;

/* Converts an ONNX file image; label names it in messages. On failure
 * returns false with a one-line message in err naming the file and, where
 * one is at fault, the node (index, name, op type); *out is then empty. */
bool onnx_import_mem(const void *buf, size_t len, const char *label, const OnnxOptions *opt,
                     OnnxImport *out, char *err, size_t errcap);
bool onnx_import_file(const char *path, const OnnxOptions *opt, OnnxImport *out, char *err,
                      size_t errcap);
void onnx_import_free(OnnxImport *imp);

/* The operators the importer maps, comma-separated. */
const char *onnx_supported_ops(void);

#endif
