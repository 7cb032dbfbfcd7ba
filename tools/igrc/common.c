#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "ir/parse.h"
#include "ir/shape.h"
#include "tools/igrc/driver.h"

int usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "igrc %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see igrc %s --help)\n", cmd);
    va_end(ap);
    return EXIT_BADINPUT;
}

int report(const Diag *d) {
    fprintf(stderr, "igrc: %s\n", d->msg);
    return d->code ? d->code : EXIT_RUNTIME;
}

static const char *value_of(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "igrc: option %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int common_option(CommonArgs *a, int argc, char **argv, int *i) {
    const char *o = argv[*i], *v;
    if (strcmp(o, "-D") == 0 || (strncmp(o, "-D", 2) == 0 && o[2])) {
        v = o[2] ? o + 2 : value_of(argc, argv, i);
        if (!v) return -1;
        if (a->ndefines == MAX_DEFINES) {
            fprintf(stderr, "igrc: more than %d -D options\n", MAX_DEFINES);
            return -1;
        }
        a->defines[a->ndefines++] = v;
        return 1;
    }
    if (strcmp(o, "--batch") == 0) {
        if (!(v = value_of(argc, argv, i))) return -1;
        char *end;
        long long b = strtoll(v, &end, 10);
        if (*end || b < 1 || b > (1 << 20)) {
            fprintf(stderr, "igrc: --batch must be an integer in [1, 1048576], got '%s'\n", v);
            return -1;
        }
        a->batch = b;
        return 1;
    }
    struct { const char *name; const char **slot; } str_opts[] = {
        {"--dump-after", &a->pipe.dump_after}, {"--stop-after", &a->pipe.stop_after},
        {"--disable", &a->pipe.disable},       {"--dump-dir", &a->pipe.dump_dir},
        {"--passes", &a->pipe.passes}};
    for (size_t k = 0; k < sizeof str_opts / sizeof str_opts[0]; k++)
        if (strcmp(o, str_opts[k].name) == 0) {
            if (!(v = value_of(argc, argv, i))) return -1;
            *str_opts[k].slot = v;
            return 1;
        }
    if (strcmp(o, "--dump-after-all") == 0) return a->pipe.dump_after_all = true, 1;
    if (strcmp(o, "--verify-each") == 0) return a->pipe.verify_each = true, 1;
    if (strcmp(o, "--time-passes") == 0) return a->pipe.timings = true, 1;
    return 0;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

Module *load_module(const CommonArgs *a, Diag *d) {
    if (ends_with(a->file, ".ir")) {
        if (a->ndefines || a->batch)
            diag_error(d, EXIT_BADINPUT, "%s: -D and --batch apply to graph files, not IR", a->file);
        Module *m = diag_failed(d) ? NULL : ir_parse_file(a->file, d);
        if (m && !ir_verify(m, d)) {
            diag_prefix(d, "%s", a->file);
            module_free(m);
            return NULL;
        }
        return m;
    }
    FrontendOptions fo = {a->defines, a->ndefines, a->batch};
    return frontend_load(a->file, &fo, d);
}
