/* igrc import: an ONNX model -> a graph file's network and its weights
 * (import/, docs/onnx.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/onnx.h"
#include "tools/igrc/driver.h"

static const char HELP[] =
    "usage: igrc import MODEL.onnx -o NET.json [--weights W.safetensors] [--name NAME]\n"
    "                   [--range LO,HI]\n"
    "\n"
    "Converts an ONNX model (opsets 13 to 18) into a graph file holding its network\n"
    "(inputs x and, for a [batch, classes] output, y) and writes its weights as\n"
    "safetensors (default: NET.json's name with .safetensors), named like the graph's\n"
    "parameters: PyTorch's state_dict keys where the model's initializers carry them.\n"
    "Include NET.json from a model file with any objective and pass the weights with\n"
    "--params (igrc exec) or --init-from / --ckpt (the executables). The result is\n"
    "loaded once to check it; the parameter count is printed.\n"
    "\n"
    "  -o FILE        the graph file to write (required)\n"
    "  --weights FILE the safetensors file to write\n"
    "  --name NAME    the network's name (default: NET.json's name up to the first '.')\n"
    "  --range LO,HI  the input's value range (default 0,1: images)\n"
    "\n"
    "Supported operators: see docs/onnx.md; any other is an error naming the node.\n";

/* "key": value on one line, indented, with a trailing comma unless last. */
static void put_member(FILE *f, const char *indent, const cJSON *e) {
    char *s = cJSON_PrintUnformatted(e);
    fprintf(f, "%s\"%s\": %s%s\n", indent, e->string, s, e->next ? "," : "");
    free(s);
}

/* networks.NAME: input and output on a line each, one node per line. */
static void put_network(FILE *f, const cJSON *net) {
    fprintf(f, "{\n    \"%s\": {\n", net->string);
    for (const cJSON *e = net->child; e; e = e->next) {
        if (!cJSON_IsArray(e)) {
            put_member(f, "      ", e);
            continue;
        }
        fprintf(f, "      \"%s\": [\n", e->string);
        for (const cJSON *n = e->child; n; n = n->next) {
            char *s = cJSON_PrintUnformatted(n);
            fprintf(f, "        %s%s\n", s, n->next ? "," : "");
            free(s);
        }
        fprintf(f, "      ]%s\n", e->next ? "," : "");
    }
    fprintf(f, "    }\n  }");
}

/* Writes the document with one node per line, like the files in models/. */
static bool write_json(const char *path, const cJSON *doc) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fprintf(f, "{\n");
    for (const cJSON *k = doc->child; k; k = k->next) {
        if (!cJSON_IsObject(k)) {
            put_member(f, "  ", k);
            continue;
        }
        fprintf(f, "  \"%s\": ", k->string);
        if (strcmp(k->string, "networks") == 0) {
            put_network(f, k->child);
        } else {
            fprintf(f, "{\n");
            for (const cJSON *e = k->child; e; e = e->next) put_member(f, "    ", e);
            fprintf(f, "  }");
        }
        fprintf(f, "%s\n", k->next ? "," : "");
    }
    fprintf(f, "}\n");
    return fclose(f) == 0;
}

/* NET.json -> NET (the network's name: graph-format name characters). */
static char *stem(const char *path, const char *ext) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strcspn(base, ".");
    if (ext) {
        const char *dot = strrchr(path, '.');
        size_t keep = dot && dot > base ? (size_t)(dot - path) : strlen(path);
        char *s = malloc(keep + strlen(ext) + 1);
        memcpy(s, path, keep);
        strcpy(s + keep, ext);
        return s;
    }
    char *s = malloc(n + 2);
    memcpy(s, base, n);
    s[n] = 0;
    for (char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            *p = '_';
    if (!s[0]) strcpy(s, "net");
    return s;
}

static int check_result(const char *out, long long nparams) {
    CommonArgs a = {.file = out};
    Diag d;
    diag_init(&d);
    Module *m = load_module(&a, &d);
    if (!m) {
        fprintf(stderr, "igrc import: the written graph file does not load:\n");
        return report(&d);
    }
    long long got = (long long)module_param_count(m, true);
    module_free(m);
    if (got != nparams) {
        fprintf(stderr, "igrc import: %s has %lld parameters, the model %lld\n", out, got, nparams);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

int cmd_import(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *weights = NULL, *name = NULL;
    OnnxOptions opt = {.range = {0, 1}};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        bool val = i + 1 < argc;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) return fputs(HELP, stdout), EXIT_OK;
        if ((strcmp(arg, "-o") == 0 || strcmp(arg, "--weights") == 0 || strcmp(arg, "--name") == 0 ||
             strcmp(arg, "--range") == 0) && !val)
            return usage_error("import", "%s needs a value", arg);
        if (strcmp(arg, "-o") == 0) out = argv[++i];
        else if (strcmp(arg, "--weights") == 0) weights = argv[++i];
        else if (strcmp(arg, "--name") == 0) name = argv[++i];
        else if (strcmp(arg, "--range") == 0) {
            char *end;
            opt.range[0] = strtod(argv[++i], &end);
            if (*end != ',' || (opt.range[1] = strtod(end + 1, &end), *end) ||
                !(opt.range[0] <= opt.range[1]))
                return usage_error("import", "--range takes LO,HI with LO <= HI, got '%s'", argv[i]);
        } else if (arg[0] == '-' || in) return usage_error("import", "unexpected argument '%s'", arg);
        else in = arg;
    }
    if (!in) return usage_error("import", "no ONNX file given");
    if (!out) return usage_error("import", "-o NET.json is required");
    char *wpath = weights ? NULL : stem(out, ".safetensors"), *nname = name ? NULL : stem(out, NULL);
    opt.net_name = name ? name : nname;
    OnnxImport imp;
    char err[2048];
    int rc = EXIT_OK;
    if (!onnx_import_file(in, &opt, &imp, err, sizeof err)) {
        fprintf(stderr, "igrc: %s\n", err);
        rc = EXIT_BADINPUT;
    } else {
        StMeta meta[2] = {{"source", (char *)in}, {"format", "pt"}};
        if (!write_json(out, imp.doc)) {
            fprintf(stderr, "igrc: %s: cannot write\n", out);
            rc = EXIT_RUNTIME;
        } else if (!st_write(weights ? weights : wpath, imp.weights, imp.nweights, meta, 2, err,
                             sizeof err)) {
            fprintf(stderr, "igrc: %s\n", err);
            rc = EXIT_RUNTIME;
        } else {
            rc = check_result(out, imp.nparams);
            if (rc == EXIT_OK)
                printf("%s: %d nodes, parameters: %lld (%d tensors in %s)\n", out,
                       cJSON_GetArraySize(cJSON_GetObjectItem(
                           cJSON_GetObjectItem(cJSON_GetObjectItem(imp.doc, "networks"),
                                               opt.net_name), "nodes")),
                       imp.nparams, imp.nweights, weights ? weights : wpath);
        }
        onnx_import_free(&imp);
    }
    free(wpath);
    free(nname);
    return rc;
}
