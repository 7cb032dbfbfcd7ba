/* igrc exec: run one entry point through a backend (the reference
 * interpreter, or a compiled backend: loaded into this process) on
 * tensors from a safetensors file, or on batches of a data set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/backend_compile.h"
#include "codegen/cpu/cpu_compile.h"
#include "ir/interp.h"
#include "runtime/io/dataset.h"
#include "runtime/program/init.h"
#include "runtime/io/safetensors.h"
#include "runtime/io/weights.h"
#include "tools/igrc/driver.h"

static const char HELP[] =
    "usage: igrc exec FILE --fn NAME (--inputs I.safetensors -o OUT.safetensors |\n"
    "                 --data NAME|DIR [--split test|train] [--limit N])\n"
    "                 [--params P.safetensors | --seed N] [--save-params P.safetensors]\n"
    "                 [--backend interp|cpu|cuda] [--gpu-arch sm_NN] [--dtype f32|f64]\n"
    "                 [-D key=value]... [--batch N]\n"
    "\n"
    "Runs entry point NAME of FILE after the full pass pipeline. Inputs bind by name\n"
    "from --inputs; outputs are written by name to -o. Parameters come from --params\n"
    "(PyTorch state_dict names: weights required, optimiser state zero when absent,\n"
    "F16/BF16/F64 converted, extra tensors ignored with a note) or are\n"
    "initialised from the graph's init specs with --seed (default 0); --save-params\n"
    "writes the parameters used. --data runs NAME over a data set (mnist,\n"
    "fashion-mnist, cifar10, or a directory of IDX or CIFAR-10 files) in batches,\n"
    "binding the image input "
    "x (scaled to [0,1]), and reports accuracy from the output `logits`.\n"
    "--dtype f64 computes in double precision; f32 rounds every f32 result to float\n"
    "(interpreter only). --backend cpu compiles FILE with the CPU backend (LLVM) and\n"
    "runs the generated kernels in this process; --backend cuda compiles it for the\n"
    "GPU as well (NVRTC, --gpu-arch, default sm_90) and runs it on the\n"
    "CUDA device (the driver loaded at run time).\n";

typedef struct {
    CommonArgs c;
    const char *fn, *inputs, *out, *params, *save_params, *data, *split;
    long limit;
    uint32_t seed;
    bool seed_given;
    InterpPrecision prec;
    const char *backend; /* NULL: the interpreter */
    const char *gpu_arch;
    CpuLoaded *loaded;   /* a compiled backend */
} ExecArgs;

/* The module compiled for the backend's target (codegen/backend_compile.h)
 * and loaded on it (runtime/backend.h). */
static CpuLoaded *load_on(const Module *m, const ExecArgs *e, Diag *d) {
    const CodegenBackend *t[2];
    CpuCompileOptions o = {0};
    o.target.arch = e->gpu_arch;
    if (!codegen_targets(e->backend, &o.target, t, &o.ntargets, d)) {
        diag_prefix(d, "--backend %s", e->backend);
        return NULL;
    }
    o.targets = t;
    return cpu_load_on(m, &o, e->backend, 0, d);
}

/* One entry point on the chosen backend. */
static bool run_fn(const Module *m, const Function *f, const ExecArgs *e, const NamedValue *in,
                   int nin, const NamedValue *params, NamedValue **outs, int *nout, Diag *d) {
    if (e->loaded)
        return cpu_loaded_call(e->loaded, f->name, in, nin, params, m->nparams, outs, nout, d);
    InterpOptions io = {e->prec};
    return interp_run(m, f, &io, in, nin, params, m->nparams, outs, nout, d);
}

/* ---- tensors between safetensors and the interpreter ---- */

/* n elements of data (dtype t) as doubles; floats of any width go through
 * st_convert_float, so F16 and BF16 values arrive exactly. */
static bool st_to_doubles(const char *name, StDtype t, const void *data, double *out, int64_t n,
                          char *err, size_t errcap) {
    if (st_dtype_is_float(t)) {
        StTensor s = {.name = (char *)name, .dtype = t, .rank = 1, .shape = {n},
                      .data = (void *)data, .nbytes = (size_t)n * st_dtype_size(t)};
        return st_convert_float(&s, ST_F64, out, err, errcap);
    }
    for (int64_t i = 0; i < n; i++) {
        switch (t) {
        case ST_I32: out[i] = ((const int32_t *)data)[i]; break;
        case ST_I64: out[i] = (double)((const int64_t *)data)[i]; break;
        case ST_U8:
        case ST_BOOL: out[i] = ((const uint8_t *)data)[i]; break;
        case ST_F32: /* floats went through st_convert_float above */
        case ST_F64:
        case ST_F16:
        case ST_BF16: break;
        }
    }
    return true;
}

/* Binds a safetensors tensor to a value of type want, checking the shape
 * and that floats go to floats and integers to integers. */
static bool bind(const StTensor *t, const char *what, const Type *want, NamedValue *nv,
                 const char *file, Diag *d) {
    bool t_float = st_dtype_is_float(t->dtype);
    /* The file's shape as text ("[2,1,28,28]"); a safetensors tensor may
     * have more dims than an IR type holds. */
    char a[256] = "[", b[128];
    for (int i = 0; i < t->rank; i++) {
        size_t k = strlen(a);
        snprintf(a + k, sizeof a - k, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    }
    strncat(a, "]", sizeof a - strlen(a) - 1);
    bool same = t->rank == want->rank;
    for (int i = 0; same && i < t->rank; i++) same = t->shape[i] == want->dim[i];
    if (!same || t_float != dtype_is_float(want->dtype))
        return diag_error(d, EXIT_BADINPUT, "%s: %s '%s' is %s%s, expected %s", file, what,
                          t->name, st_dtype_name(t->dtype), a, type_str(want, b, sizeof b));
    nv->type = *want;
    nv->data = malloc(sizeof(double) * (size_t)(type_numel(want) + 1));
    char err[512];
    if (!st_to_doubles(t->name, t->dtype, t->data, nv->data, type_numel(want), err, sizeof err))
        return diag_error(d, EXIT_BADINPUT, "%s: %s", file, err);
    return true;
}

static void free_bound(NamedValue *v, int n) {
    for (int i = 0; i < n; i++) free(v[i].data);
    free(v);
}

/* What a parameter of dtype t holds: with --dtype f64 every float is a
 * double, so files convert to F64 then. */
static StDtype st_of_dtype(DType t, InterpPrecision prec) {
    switch (t) {
    case DT_F64: return ST_F64;
    case DT_I32: return ST_I32;
    case DT_BOOL: return ST_BOOL;
    case DT_F32: case DT_COUNT: break;
    }
    return prec == INTERP_F64 ? ST_F64 : ST_F32; /* f32 */
}

/* Parameters from the init specs and a seed. */
static NamedValue *init_params(const Module *m, uint32_t seed) {
    NamedValue *p = calloc((size_t)m->nparams + 1, sizeof *p);
    for (int i = 0; i < m->nparams; i++) {
        const Param *pr = &m->params[i];
        p[i].name = pr->name;
        p[i].type = pr->type;
        p[i].data = malloc(sizeof(double) * (size_t)(type_numel(&pr->type) + 1));
        rt_init_fill(p[i].data, type_numel(&pr->type), (RtInitKind)pr->init.kind, pr->init.a,
                     seed, rt_init_stream(pr->name));
    }
    return p;
}

/* Every parameter's values from a matched file: converted to its dtype
 * (an f32 parameter gets F32-rounded values, as a compiled program would,
 * unless --dtype f64), zeros where the match has none. */
static NamedValue *bind_params(const Module *m, const WeightsParam *ws, const WeightsMatch *wm) {
    NamedValue *p = calloc((size_t)m->nparams + 1, sizeof *p);
    for (int i = 0; i < m->nparams; i++) {
        int64_t n = type_numel(&m->params[i].type);
        p[i].name = m->params[i].name;
        p[i].type = m->params[i].type;
        p[i].data = calloc((size_t)n + 1, sizeof(double));
        if (wm->data[i])
            st_to_doubles(ws[i].name, ws[i].dtype, wm->data[i], p[i].data, n, NULL, 0);
    }
    return p;
}

/* Parameters from --params under the shared weights rules
 * (runtime/io/weights.h), or from the module's init specs and a seed. */
static NamedValue *load_params(const Module *m, const ExecArgs *e, Diag *d) {
    if (!e->params) return init_params(m, e->seed);
    StFile f = {0};
    char err[1024];
    if (!st_read(e->params, &f, err, sizeof err)) {
        diag_error(d, EXIT_BADINPUT, "%s", err);
        return NULL;
    }
    WeightsParam *ws = calloc((size_t)m->nparams + 1, sizeof *ws);
    for (int i = 0; i < m->nparams; i++) {
        const Param *pr = &m->params[i];
        ws[i] = (WeightsParam){pr->name, st_of_dtype(pr->type.dtype, e->prec), pr->type.rank,
                               pr->type.dim, weights_is_optim(pr->name, pr->trainable)};
    }
    WeightsMatch wm;
    NamedValue *p = NULL;
    if (!weights_match(e->params, m->name, &f, ws, m->nparams, WEIGHTS_ONLY, &wm, err,
                       sizeof err)) {
        diag_error(d, EXIT_BADINPUT, "%s", err);
    } else {
        weights_notes(&wm, e->params, "igrc exec: note: ", stderr);
        p = bind_params(m, ws, &wm);
        weights_match_free(&wm);
    }
    free(ws);
    st_free(&f);
    return p;
}

static StDtype out_dtype(const Type *t, InterpPrecision prec) {
    if (t->dtype == DT_I32) return ST_I32;
    if (t->dtype == DT_BOOL) return ST_BOOL;
    return prec == INTERP_F64 ? ST_F64 : ST_F32;
}

/* Writes named values to a safetensors file, converting from doubles. */
static bool write_values(const char *path, const NamedValue *v, int n, InterpPrecision prec,
                         Diag *d) {
    StTensor *ts = calloc((size_t)n + 1, sizeof *ts);
    for (int i = 0; i < n; i++) {
        int64_t k = type_numel(&v[i].type);
        ts[i].name = (char *)v[i].name;
        ts[i].dtype = out_dtype(&v[i].type, prec);
        ts[i].rank = v[i].type.rank;
        for (int j = 0; j < ts[i].rank; j++) ts[i].shape[j] = v[i].type.dim[j];
        ts[i].nbytes = (size_t)k * st_dtype_size(ts[i].dtype);
        ts[i].data = malloc(ts[i].nbytes + 1);
        for (int64_t j = 0; j < k; j++) {
            double x = v[i].data[j];
            switch (ts[i].dtype) {
            case ST_F32: ((float *)ts[i].data)[j] = (float)x; break;
            case ST_F64: ((double *)ts[i].data)[j] = x; break;
            case ST_I32: ((int32_t *)ts[i].data)[j] = (int32_t)x; break;
            case ST_U8:
            case ST_BOOL: ((uint8_t *)ts[i].data)[j] = x != 0; break;
            case ST_I64: /* out_dtype picks none of these */
            case ST_F16:
            case ST_BF16: break;
            }
        }
    }
    char err[1024];
    bool ok = st_write(path, ts, n, NULL, 0, err, sizeof err);
    for (int i = 0; i < n; i++) free(ts[i].data);
    free(ts);
    return ok || diag_error(d, EXIT_RUNTIME, "%s", err);
}

/* ---- labels ---- */

/* The classes of the module's input `name` (0: not a label input). */
static int label_classes(const Module *m, const char *name) {
    for (int i = 0; i < m->ninputs; i++)
        if (!strcmp(m->inputs[i].name, name)) return m->inputs[i].classes;
    return 0;
}

/* Every value of a label tensor in [0, classes), on every backend alike
 * (a compiled gather would read out of bounds where the interpreter
 * stops); file and index named. */
static bool check_labels(const double *v, int64_t n, int classes, const char *file,
                         const char *what, Diag *d) {
    for (int64_t i = 0; classes > 0 && i < n; i++)
        if (!(v[i] >= 0 && v[i] < classes))
            return diag_error(d, EXIT_BADINPUT, "%s: %s[%lld] is %g, not a class in [0, %d)", file,
                              what, (long long)i, v[i], classes);
    return true;
}

/* ---- running on tensors from a file ---- */

static int run_on_file(const Module *m, const Function *f, const ExecArgs *e,
                       const NamedValue *params, Diag *d) {
    StFile in = {0};
    char err[1024];
    if (!st_read(e->inputs, &in, err, sizeof err)) return diag_error(d, EXIT_BADINPUT, "%s", err), report(d);
    NamedValue *iv = calloc((size_t)f->n + 1, sizeof *iv);
    int ni = 0;
    for (int i = 0; i < f->n && !diag_failed(d); i++) {
        const Node *n = &f->nodes[i];
        if (n->op != OP_INPUT) continue;
        const StTensor *t = st_find(&in, n->name);
        if (!t) diag_error(d, EXIT_BADINPUT, "%s: no tensor for input '%s' of %s", e->inputs, n->name, f->name);
        else if (bind(t, "input", &n->type, &iv[ni], e->inputs, d) &&
                 check_labels(iv[ni].data, type_numel(&n->type), label_classes(m, n->name),
                              e->inputs, n->name, d))
            iv[ni++].name = n->name;
        else if (iv[ni].data)
            free(iv[ni].data), iv[ni].data = NULL;
    }
    NamedValue *outs = NULL;
    int nout = 0;
    bool ok = !diag_failed(d) && run_fn(m, f, e, iv, ni, params, &outs, &nout, d);
    if (ok) ok = write_values(e->out, outs, nout, e->prec, d);
    if (ok)
        for (int i = 0; i < nout; i++) {
            char t[128];
            printf("%s: %s\n", outs[i].name, type_str(&outs[i].type, t, sizeof t));
        }
    named_values_free(outs, nout);
    free_bound(iv, ni);
    st_free(&in);
    return ok ? EXIT_OK : report(d);
}

/* ---- running over a data set ---- */

static int argmax_row(const double *row, int64_t c) {
    int64_t best = 0;
    for (int64_t j = 1; j < c; j++)
        if (row[j] > row[best]) best = j;
    return (int)best;
}

typedef struct {
    Dataset ds;
    int64_t count, pixels;
} Data;

/* The data set as the executables read it (runtime/io/dataset.h): MNIST,
 * Fashion-MNIST, CIFAR-10 by name, or a directory of IDX or CIFAR files. */
static bool load_data(const Module *m, const ExecArgs *e, Data *data, Diag *d) {
    char err[4096];
    bool train = strcmp(e->split, "test") != 0;
    if (!dataset_load(e->data, NULL, train, e->limit, &data->ds, err, sizeof err) ||
        !dataset_check_labels(&data->ds, train, label_classes(m, "y"), err, sizeof err))
        return diag_error(d, EXIT_BADINPUT, "%s", err);
    data->count = data->ds.n;
    data->pixels = data->ds.c * data->ds.h * data->ds.w;
    return true;
}

/* Fills x with images [start, start + B); rows past the end are zero
 * padding. Pixels are byte / 255 in double, recovered exactly from the
 * data set's floats. Returns the number of real rows. */
static int64_t fill_batch(const Data *data, int64_t start, int64_t B, double *x) {
    int64_t rows = data->count - start < B ? data->count - start : B;
    for (int64_t r = 0; r < B; r++)
        for (int64_t p = 0; p < data->pixels; p++)
            x[r * data->pixels + p] =
                r < rows ? (double)lrintf(data->ds.x[(start + r) * data->pixels + p] * 255.0f) / 255.0 : 0.0;
    return rows;
}

static int output_index(const Function *f, const char *name) {
    for (int i = 0; i < f->noutputs; i++)
        if (strcmp(f->outputs[i].name, name) == 0) return i;
    return -1;
}

static bool run_batches(const Module *m, const Function *f, const ExecArgs *e,
                        const NamedValue *params, const Data *data, int x, int *correct, Diag *d) {
    const Type *xt = &f->nodes[x].type;
    int64_t B = xt->dim[0], C = 0;
    NamedValue in = {f->nodes[x].name, *xt, malloc(sizeof(double) * (size_t)type_numel(xt))};
    int lo = output_index(f, "logits");
    bool tty = isatty(STDERR_FILENO); /* a progress line only where someone watches */
    printf("%-8s %-10s %-6s\n", "image", "predicted", "label");
    for (int64_t s = 0; s < data->count && !diag_failed(d); s += B) {
        int64_t rows = fill_batch(data, s, B, in.data);
        NamedValue *outs = NULL;
        int nout = 0;
        if (!run_fn(m, f, e, &in, 1, params, &outs, &nout, d)) break;
        C = outs[lo].type.dim[1];
        for (int64_t r = 0; r < rows; r++) {
            int pred = argmax_row(outs[lo].data + r * C, C), lab = data->ds.y[s + r];
            *correct += pred == lab;
            if (s + r < 10) printf("%-8lld %-10d %-6d\n", (long long)(s + r), pred, lab);
        }
        named_values_free(outs, nout);
        if (tty) fprintf(stderr, "\r%lld/%lld images", (long long)(s + rows), (long long)data->count);
    }
    if (tty) fprintf(stderr, "\n");
    free(in.data);
    return !diag_failed(d);
}

static int run_on_data(const Module *m, const Function *f, const ExecArgs *e,
                       const NamedValue *params, Diag *d) {
    int x = func_find(f, "x");
    if (x < 0 || f->nodes[x].op != OP_INPUT || output_index(f, "logits") < 0)
        return diag_error(d, EXIT_BADINPUT, "--data needs an entry point with input x and output logits; %s has %s",
                          f->name, x < 0 ? "no input x" : "no output logits"), report(d);
    Data data = {0};
    int correct = 0;
    bool ok = load_data(m, e, &data, d);
    if (ok && type_numel(&f->nodes[x].type) / f->nodes[x].type.dim[0] != data.pixels)
        ok = diag_error(d, EXIT_BADINPUT, "data set %s has %lld values per image; input x of %s wants %lld",
                        e->data, (long long)data.pixels, f->name,
                        (long long)(type_numel(&f->nodes[x].type) / f->nodes[x].type.dim[0]));
    if (ok) ok = run_batches(m, f, e, params, &data, x, &correct, d);
    if (ok)
        printf("accuracy: %.2f%% (%d/%lld, %s split of %s)\n", 100.0 * correct / (double)data.count,
               correct, (long long)data.count, e->split, e->data);
    dataset_free(&data.ds);
    return ok ? EXIT_OK : report(d);
}

/* ---- options ---- */

static int parse(int argc, char **argv, ExecArgs *e) {
    for (int i = 1; i < argc; i++) {
        int r = common_option(&e->c, argc, argv, &i);
        if (r < 0) return EXIT_BADINPUT;
        if (r) continue;
        const char *o = argv[i];
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) return fputs(HELP, stdout), -1;
        struct { const char *name; const char **slot; } s[] = {
            {"--fn", &e->fn},          {"--inputs", &e->inputs}, {"-o", &e->out},
            {"--params", &e->params},  {"--data", &e->data},     {"--split", &e->split},
            {"--save-params", &e->save_params}};
        bool done = false;
        for (size_t k = 0; k < sizeof s / sizeof s[0] && !done; k++)
            if (strcmp(o, s[k].name) == 0 && i + 1 < argc) *s[k].slot = argv[++i], done = true;
        if (done) continue;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(o, "--seed") == 0 && v) {
            e->seed = (uint32_t)strtoul(v, &end, 10), e->seed_given = true, i++;
        } else if (strcmp(o, "--limit") == 0 && v) {
            e->limit = strtol(v, &end, 10), i++;
        } else if (strcmp(o, "--dtype") == 0 && v && (!strcmp(v, "f32") || !strcmp(v, "f64"))) {
            e->prec = v[1] == '6' ? INTERP_F64 : INTERP_F32, i++;
        } else if (strcmp(o, "--backend") == 0 && v && (!strcmp(v, "interp") || backend_find(v))) {
            e->backend = strcmp(v, "interp") ? v : NULL, i++;
        } else if (strcmp(o, "--gpu-arch") == 0 && v) {
            e->gpu_arch = v, i++;
        } else if (o[0] != '-' && !e->c.file) {
            e->c.file = o;
        } else {
            return usage_error("exec", "unexpected or incomplete argument '%s'", o);
        }
        if (end && *end) return usage_error("exec", "%s needs an integer, got '%s'", o, v);
    }
    if (!e->c.file) return usage_error("exec", "no graph file given");
    if (!e->fn) return usage_error("exec", "--fn NAME is required");
    if (!e->inputs == !e->data) return usage_error("exec", "give exactly one of --inputs and --data");
    if (e->inputs && !e->out) return usage_error("exec", "-o OUT.safetensors is required with --inputs");
    if (e->data && e->out) return usage_error("exec", "-o applies to --inputs; --data prints its results");
    if (e->params && e->seed_given) return usage_error("exec", "--seed initialises parameters; it has no effect with --params");
    if (strcmp(e->split, "test") && strcmp(e->split, "train"))
        return usage_error("exec", "--split must be test or train");
    return EXIT_OK;
}

int cmd_exec(int argc, char **argv) {
    ExecArgs e = {.split = "test", .prec = INTERP_F32};
    int rc = parse(argc, argv, &e);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    Diag d;
    diag_init(&d);
    Module *m = load_module(&e.c, &d);
    if (!m || !pipeline_run(m, &e.c.pipe, &d)) {
        module_free(m);
        return report(&d);
    }
    Function *f = module_find_func(m, e.fn);
    NamedValue *params = NULL;
    if (!f) {
        diag_error(&d, EXIT_BADINPUT, "%s has no entry point '%s'", e.c.file, e.fn);
        rc = report(&d);
    } else if (!(params = load_params(m, &e, &d))) {
        rc = report(&d);
    } else if (e.save_params && !write_values(e.save_params, params, m->nparams, e.prec, &d)) {
        rc = report(&d);
    } else if (e.backend && !(e.loaded = load_on(m, &e, &d))) {
        rc = report(&d);
    } else {
        rc = e.data ? run_on_data(m, f, &e, params, &d) : run_on_file(m, f, &e, params, &d);
    }
    cpu_loaded_free(e.loaded);
    if (params) free_bound(params, m->nparams);
    module_free(m);
    return rc;
}
