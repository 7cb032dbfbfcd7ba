/* Loading weights by name (runtime/weights.h through ckpt_load): dtype
 * conversions with their exact values, optimiser state absent or present
 * under each mode, the messages for a missing weight, a shape or a dtype
 * mismatch, the notes, and the weights-only export. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/io/checkpoint.h"
#include "runtime/program/program.h"
#include "runtime/io/safetensors.h"
#include "runtime/io/weights.h"
#include "tests/common/scratch.h"

TestSuite(weights, .init = scratch_setup, .fini = scratch_teardown);

static void k_none(void *const *bufs, int64_t begin, int64_t end) {
    (void)bufs, (void)begin, (void)end;
}

static const PKernelFn kNone[] = {k_none};

/* A network's parameter kinds: a weight, a batch norm's statistics, Adam's
 * state for the weight, an f64 weight. */
static const char kProgram[] =
    "program wts batch 1\n"
    "param conv.weight f32 [2,2] init uniform 0.5 trainable\n"
    "param bn.running_mean f32 [2] init zeros 0 state\n"
    "param bn.running_var f32 [2] init ones 0 state\n"
    "param optim.exp_avg.conv.weight f32 [2,2] init zeros 0 state\n"
    "param d f64 [3] init uniform 1 trainable\n"
    "func predict arena 0\n"
    "  in x f32 [1,2]\n"
    "  out y f32 [1,2] o0\n"
    "  kernel 0 1 1 i0 p0 o0 # none\n"
    "end\n";

enum { P_CONV, P_MEAN, P_VAR, P_OPTIM, P_D };

typedef struct {
    Program *p;
    Exec *e;
} Fixture;

static Fixture open_fixture(void) {
    char err[1024];
    Fixture fx;
    fx.p = program_parse(kProgram, 1, err, sizeof err);
    cr_assert_not_null(fx.p, "%s", err);
    fx.e = exec_new(fx.p, &(BackendCode){kNone, 1, NULL, 0}, "cpu", 1, 7, err, sizeof err);
    cr_assert_not_null(fx.e, "%s", err);
    return fx;
}

static void close_fixture(Fixture *fx) {
    exec_free(fx->e);
    program_free(fx->p);
}

static float *f32p(Fixture *fx, int i) { return exec_param(fx->e, i); }

/* The tensors of a state_dict; each test edits a copy before writing. */
typedef struct {
    StTensor t[8];
    int n;
    float conv[4], mean[2], var[2], optim[4];
    double d[3];
} Dict;

static void dict_init(Dict *s) {
    memset(s, 0, sizeof *s);
    float conv[4] = {1, -2, 3, -4}, mean[2] = {0.5f, -0.5f}, var[2] = {2, 3};
    float optim[4] = {9, 9, 9, 9};
    double d[3] = {0.25, -0.5, 8};
    memcpy(s->conv, conv, sizeof conv), memcpy(s->mean, mean, sizeof mean);
    memcpy(s->var, var, sizeof var), memcpy(s->optim, optim, sizeof optim);
    memcpy(s->d, d, sizeof d);
    s->t[0] = (StTensor){.name = "conv.weight", .dtype = ST_F32, .rank = 2, .shape = {2, 2},
                         .data = s->conv, .nbytes = 16};
    s->t[1] = (StTensor){.name = "bn.running_mean", .dtype = ST_F32, .rank = 1, .shape = {2},
                         .data = s->mean, .nbytes = 8};
    s->t[2] = (StTensor){.name = "bn.running_var", .dtype = ST_F32, .rank = 1, .shape = {2},
                         .data = s->var, .nbytes = 8};
    s->t[3] = (StTensor){.name = "d", .dtype = ST_F64, .rank = 1, .shape = {3}, .data = s->d,
                         .nbytes = 24};
    s->n = 4;
}

static void dict_add(Dict *s, StTensor t) { s->t[s->n++] = t; }

static void dict_drop(Dict *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) {
            s->t[i] = s->t[--s->n];
            return;
        }
    cr_assert_fail("no tensor %s", name);
}

static const char *dict_write(const Dict *s) {
    const char *path = in_dir("w.safetensors");
    char err[1024];
    cr_assert(st_write(path, s->t, s->n, NULL, 0, err, sizeof err), "%s", err);
    return path;
}

/* ckpt_load with the notes captured into *notes (malloc'd). */
static bool load(Fixture *fx, const char *path, WeightsMode mode, char *err, size_t cap,
                 char **notes) {
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    bool ok = ckpt_load(path, fx->e, mode, NULL, f, err, cap);
    long n = ftell(f);
    rewind(f);
    *notes = calloc((size_t)n + 1, 1);
    cr_assert_eq(fread(*notes, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return ok;
}

/* ---- conversions -------------------------------------------------------- */

Test(weights, f16_values_exact) {
    static const struct {
        uint16_t bits;
        float want;
    } cases[] = {
        {0x3c00, 1.0f},           {0xc000, -2.0f},          {0x7bff, 65504.0f},
        {0x0001, 0x1p-24f},       {0x03ff, 1023 * 0x1p-24f}, {0x0400, 0x1p-14f},
        {0x3555, 0.333251953125f}, {0x8000, -0.0f},         {0x7c00, INFINITY},
        {0xfc00, -INFINITY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        float got = st_f16_to_f32(cases[i].bits);
        cr_assert(got == cases[i].want && signbit(got) == signbit(cases[i].want),
                  "0x%04x: %a, want %a", cases[i].bits, got, cases[i].want);
    }
    cr_assert(isnan(st_f16_to_f32(0x7e00)));
}

Test(weights, bf16_values_exact) {
    cr_assert_eq(st_bf16_to_f32(0x3f80), 1.0f);
    cr_assert_eq(st_bf16_to_f32(0xc0a0), -5.0f);
    cr_assert_eq(st_bf16_to_f32(0x3eab), 0.333984375f);
    cr_assert_eq(st_bf16_to_f32(0x0001), 0x1p-133f); /* a float subnormal */
    cr_assert_eq(st_bf16_to_f32(0x7f7f), 0x1.fep127f);
    cr_assert(isinf(st_bf16_to_f32(0xff80)) && st_bf16_to_f32(0xff80) < 0);
}

/* A state_dict saved as F16, BF16 and F64 lands in the f32 parameters with
 * these values; an F32 tensor in the f64 parameter is widened exactly. */
Test(weights, float_dtypes_convert) {
    Fixture fx = open_fixture();
    Dict s;
    dict_init(&s);
    uint16_t conv16[4] = {0x3c00, 0xc000, 0x3555, 0x0001};     /* F16 */
    uint16_t mean16[2] = {0x3eab, 0xc0a0};                     /* BF16 */
    double var64[2] = {0.1, 1 + 0x1p-24};                      /* F64: rounds to nearest */
    float d32[3] = {0.1f, -3, 1e-30f};
    s.t[0].dtype = ST_F16, s.t[0].data = conv16, s.t[0].nbytes = 8;
    s.t[1].dtype = ST_BF16, s.t[1].data = mean16, s.t[1].nbytes = 4;
    s.t[2].dtype = ST_F64, s.t[2].data = var64, s.t[2].nbytes = 16;
    s.t[3].dtype = ST_F32, s.t[3].data = d32, s.t[3].nbytes = 12;
    char err[1024], *notes;
    cr_assert(load(&fx, dict_write(&s), WEIGHTS_ONLY, err, sizeof err, &notes), "%s", err);
    float want_conv[4] = {1, -2, 0.333251953125f, 0x1p-24f};
    for (int i = 0; i < 4; i++) cr_assert_eq(f32p(&fx, P_CONV)[i], want_conv[i], "conv[%d]", i);
    cr_assert_eq(f32p(&fx, P_MEAN)[0], 0.333984375f);
    cr_assert_eq(f32p(&fx, P_MEAN)[1], -5.0f);
    cr_assert_eq(f32p(&fx, P_VAR)[0], 0.1f);
    cr_assert_eq(f32p(&fx, P_VAR)[1], 1.0f, "a tie rounds to even");
    double *d = exec_param(fx.e, P_D);
    cr_assert(d[0] == (double)0.1f && d[1] == -3 && d[2] == (double)1e-30f);
    free(notes);
    close_fixture(&fx);
}

/* An F64 value beyond F32's range fails the load, and nothing is written,
 * although the tensors before it converted fine. */
Test(weights, f64_overflow_leaves_params) {
    Fixture fx = open_fixture();
    float before[4];
    memcpy(before, f32p(&fx, P_CONV), sizeof before);
    Dict s;
    dict_init(&s);
    double var64[2] = {1, 1e300};
    s.t[2].dtype = ST_F64, s.t[2].data = var64, s.t[2].nbytes = 16;
    char err[1024], *notes;
    cr_assert_not(load(&fx, dict_write(&s), WEIGHTS_ONLY, err, sizeof err, &notes));
    cr_assert(strstr(err, "w.safetensors: tensor 'bn.running_var': element 1 = 1e+300 is beyond "
                          "the range of F32"), "%s", err);
    cr_assert_eq(memcmp(before, f32p(&fx, P_CONV), sizeof before), 0);
    free(notes);
    close_fixture(&fx);
}

/* ---- optimiser state ---------------------------------------------------- */

Test(weights, optim_absent_zero_with_one_note) {
    Fixture fx = open_fixture();
    for (int i = 0; i < 4; i++) f32p(&fx, P_OPTIM)[i] = 5;
    Dict s;
    dict_init(&s);
    char err[1024], *notes;
    const char *path = dict_write(&s);
    cr_assert(load(&fx, path, WEIGHTS_ONLY, err, sizeof err, &notes), "%s", err);
    for (int i = 0; i < 4; i++) cr_assert_eq(f32p(&fx, P_OPTIM)[i], 0.0f);
    cr_assert_eq(f32p(&fx, P_CONV)[3], -4.0f);
    cr_assert_eq(f32p(&fx, P_VAR)[1], 3.0f, "batch-norm statistics are weights");
    char want[700];
    snprintf(want, sizeof want,
             "note: %s: 1 optimiser tensor (optim.*) not in the file: zero-filled\n", path);
    cr_assert_str_eq(notes, want);
    free(notes);
    close_fixture(&fx);
}

Test(weights, optim_present_loaded_or_fresh) {
    Fixture fx = open_fixture();
    Dict s;
    dict_init(&s);
    dict_add(&s, (StTensor){.name = "optim.exp_avg.conv.weight", .dtype = ST_F32, .rank = 2,
                            .shape = {2, 2}, .data = s.optim, .nbytes = 16});
    char err[1024], *notes;
    const char *path = dict_write(&s);
    cr_assert(load(&fx, path, WEIGHTS_ONLY, err, sizeof err, &notes), "%s", err);
    cr_assert_eq(f32p(&fx, P_OPTIM)[2], 9.0f);
    cr_assert_str_eq(notes, "");
    free(notes);
    cr_assert(load(&fx, path, WEIGHTS_FRESH, err, sizeof err, &notes), "%s", err);
    cr_assert_eq(f32p(&fx, P_OPTIM)[2], 0.0f);
    cr_assert_eq(f32p(&fx, P_CONV)[0], 1.0f);
    cr_assert(strstr(notes, "1 optimiser tensor (optim.*) set to zero, the file's 1 not loaded"),
              "%s", notes);
    free(notes);
    close_fixture(&fx);
}

/* Resuming needs every parameter: weights alone are refused, naming the
 * optimiser tensor. */
Test(weights, resume_needs_optim) {
    Fixture fx = open_fixture();
    Dict s;
    dict_init(&s);
    char err[1024], *notes;
    cr_assert_not(load(&fx, dict_write(&s), WEIGHTS_ALL, err, sizeof err, &notes));
    cr_assert(strstr(err, "w.safetensors: optimiser state tensor 'optim.exp_avg.conv.weight' is "
                          "missing"), "%s", err);
    free(notes);
    close_fixture(&fx);
}

/* ---- errors and notes --------------------------------------------------- */

Test(weights, missing_weight_names_file_and_tensor) {
    Fixture fx = open_fixture();
    float before[2];
    memcpy(before, f32p(&fx, P_MEAN), sizeof before);
    Dict s;
    dict_init(&s);
    dict_drop(&s, "bn.running_var");
    char err[1024], *notes;
    const char *path = dict_write(&s);
    cr_assert_not(load(&fx, path, WEIGHTS_ONLY, err, sizeof err, &notes));
    char want[700];
    snprintf(want, sizeof want,
             "%s: tensor 'bn.running_var' is missing (program wts has 5 parameters)", path);
    cr_assert_str_eq(err, want);
    cr_assert_eq(memcmp(before, f32p(&fx, P_MEAN), sizeof before), 0, "unchanged");
    free(notes);
    close_fixture(&fx);
}

Test(weights, shape_mismatch_names_both_shapes) {
    Fixture fx = open_fixture();
    Dict s;
    dict_init(&s);
    s.t[0].rank = 1, s.t[0].shape[0] = 4;
    char err[1024], *notes;
    cr_assert_not(load(&fx, dict_write(&s), WEIGHTS_ONLY, err, sizeof err, &notes));
    cr_assert(strstr(err, "tensor 'conv.weight' has shape [4], the program expects [2,2]"), "%s",
              err);
    free(notes);
    close_fixture(&fx);
}

Test(weights, integer_for_float_names_both_dtypes) {
    Fixture fx = open_fixture();
    Dict s;
    dict_init(&s);
    int64_t mean[2] = {1, 2};
    s.t[1].dtype = ST_I64, s.t[1].data = mean, s.t[1].nbytes = 16;
    char err[1024], *notes;
    cr_assert_not(load(&fx, dict_write(&s), WEIGHTS_ONLY, err, sizeof err, &notes));
    cr_assert(strstr(err, "tensor 'bn.running_mean' has dtype I64, the program expects F32 (a "
                          "float type)"), "%s", err);
    free(notes);
    close_fixture(&fx);
}

/* Tensors of the file that are no parameter: one note listing them; PyTorch's
 * num_batches_tracked of a batch norm the program has is not among them. */
Test(weights, extra_tensors_one_note) {
    Fixture fx = open_fixture();
    Dict s;
    dict_init(&s);
    int64_t nbt = 3;
    float x[1] = {0};
    dict_add(&s, (StTensor){.name = "bn.num_batches_tracked", .dtype = ST_I64, .rank = 0,
                            .data = &nbt, .nbytes = 8});
    dict_add(&s, (StTensor){.name = "fc.bias", .dtype = ST_F32, .rank = 1, .shape = {1},
                            .data = x, .nbytes = 4});
    dict_add(&s, (StTensor){.name = "head.num_batches_tracked", .dtype = ST_I64, .rank = 0,
                            .data = &nbt, .nbytes = 8});
    char err[1024], *notes;
    const char *path = dict_write(&s);
    cr_assert(load(&fx, path, WEIGHTS_ONLY, err, sizeof err, &notes), "%s", err);
    char want[1200];
    snprintf(want, sizeof want,
             "note: %s: 1 optimiser tensor (optim.*) not in the file: zero-filled\n"
             "note: %s: 2 tensors of the file not in the program, ignored: fc.bias, "
             "head.num_batches_tracked\n", path, path);
    cr_assert_str_eq(notes, want);
    free(notes);
    close_fixture(&fx);
}

/* Very many extra tensors: the names that fit, then how many more. */
Test(weights, many_extra_tensors_cut_short) {
    StFile f = {0};
    f.n = 200;
    f.tensors = calloc(200, sizeof *f.tensors);
    char names[200][32];
    for (int i = 0; i < 200; i++) {
        snprintf(names[i], sizeof names[i], "layer%d.weight", i);
        f.tensors[i].name = names[i];
    }
    WeightsMatch m;
    char err[256];
    cr_assert(weights_match("x.safetensors", "p", &f, NULL, 0, WEIGHTS_ONLY, &m, err, sizeof err),
              "%s", err);
    cr_assert_eq(m.extra, 200);
    cr_assert(!strncmp(m.extra_names, "layer0.weight, layer1.weight, ", 30), "%s", m.extra_names);
    const char *more = strstr(m.extra_names, ", ... (");
    cr_assert_not_null(more, "%s", m.extra_names);
    int listed = 1;
    for (const char *c = m.extra_names; c < more; c++) listed += *c == ',';
    char tail[64];
    snprintf(tail, sizeof tail, ", ... (%d more)", 200 - listed);
    cr_assert_str_eq(more, tail);
    cr_assert_lt(strlen(m.extra_names), sizeof m.extra_names);
    weights_match_free(&m);
    free(f.tensors);
}

/* ---- export ------------------------------------------------------------- */

Test(weights, export_weights_alone) {
    Fixture fx = open_fixture();
    for (int i = 0; i < 4; i++) f32p(&fx, P_OPTIM)[i] = 5;
    CkptInfo info = {.step = 42};
    char err[1024];
    const char *path = in_dir("export.safetensors");
    cr_assert(ckpt_export(path, fx.e, &info, err, sizeof err), "%s", err);
    StFile f;
    cr_assert(st_read(path, &f, err, sizeof err), "%s", err);
    static const char *const want[] = {"conv.weight", "bn.running_mean", "bn.running_var",
                                       "bn.num_batches_tracked", "d"};
    cr_assert_eq(f.n, 5);
    for (int i = 0; i < 5; i++) cr_assert_str_eq(f.tensors[i].name, want[i]);
    const StTensor *nbt = st_find(&f, "bn.num_batches_tracked");
    cr_assert(nbt->dtype == ST_I64 && nbt->rank == 0 && *(int64_t *)nbt->data == 42);
    cr_assert_eq(st_find(&f, "d")->dtype, ST_F64);
    cr_assert_eq(memcmp(st_find(&f, "conv.weight")->data, f32p(&fx, P_CONV), 16), 0);
    cr_assert_eq(f.nmeta, 3);
    cr_assert_str_eq(f.meta[0].key, "format");
    cr_assert_str_eq(f.meta[0].value, "pt");
    cr_assert_str_eq(f.meta[1].value, "wts");
    cr_assert_str_eq(f.meta[2].value, "42");
    st_free(&f);
    /* and it loads back as weights, the optimiser state zero-filled */
    char *notes;
    cr_assert(load(&fx, path, WEIGHTS_ONLY, err, sizeof err, &notes), "%s", err);
    cr_assert_eq(f32p(&fx, P_OPTIM)[0], 0.0f);
    cr_assert(strstr(notes, "zero-filled") && !strstr(notes, "ignored"), "%s", notes);
    free(notes);
    close_fixture(&fx);
}
