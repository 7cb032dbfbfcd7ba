/* The program text form and its executor: parse/print round trip, every
 * validation error (line number and problem), and the runner on small
 * programs whose kernels are C functions below with the kernel ABI. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/cpu_ops.h"
#include "runtime/program/init.h"
#include "runtime/cpu/runner.h"

/* ---- kernels (ABI: void k(void *const *bufs, int64_t begin, int64_t end)) ---- */

/* 0: out = a + b */
static void k_add(void *const *bufs, int64_t begin, int64_t end) {
    float *o = bufs[0];
    const float *a = bufs[1], *b = bufs[2];
    for (int64_t i = begin; i < end; i++) o[i] = a[i] + b[i];
}

/* 1: out = a * s[0] */
static void k_scale(void *const *bufs, int64_t begin, int64_t end) {
    float *o = bufs[0];
    const float *a = bufs[1], *s = bufs[2];
    for (int64_t i = begin; i < end; i++) o[i] = a[i] * s[0];
}

/* 2: out = a + 1 */
static void k_inc(void *const *bufs, int64_t begin, int64_t end) {
    float *o = bufs[0];
    const float *a = bufs[1];
    for (int64_t i = begin; i < end; i++) o[i] = a[i] + 1.0f;
}

/* 3: out = a + (float)trip[0] (trip is i32) */
static void k_add_trip(void *const *bufs, int64_t begin, int64_t end) {
    float *o = bufs[0];
    const float *a = bufs[1];
    const int32_t *t = bufs[2];
    for (int64_t i = begin; i < end; i++) o[i] = a[i] + (float)t[0];
}

/* 4: out[i] = i * 3 + 1 (double), each element written once */
static void k_iota(void *const *bufs, int64_t begin, int64_t end) {
    double *o = bufs[0];
    for (int64_t i = begin; i < end; i++) o[i] += (double)i * 3.0 + 1.0;
}

/* 5: out = a * a + b (elementwise, f64) */
static void k_fma64(void *const *bufs, int64_t begin, int64_t end) {
    double *o = bufs[0];
    const double *a = bufs[1], *b = bufs[2];
    for (int64_t i = begin; i < end; i++) o[i] = a[i] * a[i] + b[i];
}

static const PKernelFn KERNELS[] = {k_add, k_scale, k_inc, k_add_trip, k_iota, k_fma64};
#define NK ((int)(sizeof KERNELS / sizeof *KERNELS))

static Program *parse_ok(const char *text) {
    char err[512] = "";
    Program *p = program_parse(text, NK, err, sizeof err);
    cr_assert_not_null(p, "parse failed: %s\n%s", err, text);
    cr_assert_str_empty(err);
    return p;
}

static Runner *runner_ok(const Program *p, int threads, uint32_t seed) {
    char err[512] = "";
    Runner *r = runner_new(p, KERNELS, NK, threads, seed, err, sizeof err);
    cr_assert_not_null(r, "runner_new failed: %s", err);
    return r;
}

/* ---- round trip ---- */

static const char *const EVERY_KIND =
    "program demo batch 4\n"
    "param w f32 [2,3] init uniform 0.5 trainable\n"
    "param b f64 [3] init normal 0.25 state\n"
    "param n i32 [] init ones 1 state\n"
    "param m bool [2,1,1,1,1,2] init zeros 0 state\n"
    "input x f32 [4,2] batched -1 1 10\n"
    "input lbl i32 [4] fixed 0 9.5 10\n"
    "setting lr num 0.01\n"
    "setting big num 1e+300\n"
    "setting name str \"a \\\"q\\\" \\\\ b\\n\\t#x \\x01\"\n"
    "const one f32 [] 0000803f\n"
    "const e f32 [0] -\n"
    "func body arena 64\n"
    "  in t i32 []\n"
    "  in c f32 [2]\n"
    "  in s f32 []\n"
    "  out n f32 [2] a0\n"
    "  kernel 1 2 1 a0 i1 i2 # scale_1\n"
    "end\n"
    "func main arena 4096\n"
    "  in x f32 [4,2]\n"
    "  out y f32 [4,3] o0\n"
    "  out w f32 [2,3] p0\n"
    "  out xx f32 [4,2] i0\n"
    "  out z f32 [2] a128\n"
    "  out k f32 [] c0\n"
    "  lib matmul f32 1 4 2 3 0 0 ; o0 i0 p0 # matmul_3 (x @ w)\n"
    "  kernel 0 12 4 o0 o0 a256 # add_4\n"
    "  copy 8 a128 i0\n"
    "  loop body 3 8 a128 a128 c0 # while_5\n"
    "  lib conv2d f64 1 2 5 5 3 3 3 1 1 1 1 5 5 ; a1024 a2048 a3072\n"
    "  lib maxpool2d f32 1 1 4 4 2 2 2 2 0 0 2 2 ; a3600 a3700\n"
    "  reduce 3 a128 # grad.z\n"
    "  ranksum f64 3 a1024 a2048 # bn.sum.ranks\n"
    "end\n";

Test(program, round_trip_every_line_kind) {
    Program *p = parse_ok(EVERY_KIND);
    char *t = program_to_text(p);
    cr_assert_not_null(t);
    cr_assert_str_eq(t, EVERY_KIND);
    /* The structure as read. */
    cr_assert_str_eq(p->name, "demo");
    cr_assert_eq(p->batch, 4);
    cr_assert_eq(p->nparams, 4);
    cr_assert_eq(p->params[0].t.dtype, PD_F32);
    cr_assert_eq(p->params[0].t.rank, 2);
    cr_assert_eq(p->params[0].t.dim[1], 3);
    cr_assert_eq(p->params[0].init_kind, RT_INIT_UNIFORM);
    cr_assert_eq(p->params[0].init_a, 0.5);
    cr_assert(p->params[0].trainable);
    cr_assert_not(p->params[1].trainable);
    cr_assert_eq(p->params[2].t.rank, 0);
    cr_assert_eq(ptensor_bytes(&p->params[3].t), 4);
    cr_assert_eq(p->ninputs, 2);
    cr_assert(p->inputs[0].batched);
    cr_assert_eq(p->inputs[0].lo, -1.0);
    cr_assert_eq(p->inputs[1].hi, 9.5);
    cr_assert_eq(p->inputs[1].classes, 10);
    cr_assert_eq(program_setting(p, "lr")->num, 0.01);
    cr_assert_eq(program_setting(p, "big")->num, 1e300);
    cr_assert_str_eq(program_setting(p, "name")->str, "a \"q\" \\ b\n\t#x \x01");
    cr_assert_null(program_setting(p, "nope"));
    cr_assert_eq(*(const float *)p->consts[0].data, 1.0f);
    cr_assert_eq(ptensor_bytes(&p->consts[1].t), 0);
    cr_assert_eq(program_find_func(p, "main"), 1);
    cr_assert_eq(program_find_func(p, "zzz"), -1);
    cr_assert_eq(program_find_param(p, "n"), 2);
    cr_assert_eq(program_find_param(p, "zzz"), -1);
    const PFunc *m = &p->funcs[1];
    cr_assert_eq(m->nsteps, 8);
    cr_assert_eq(m->steps[0].kind, PS_LIB);
    cr_assert_eq(m->steps[0].index, CPU_MATMUL);
    cr_assert_eq(m->steps[0].nargs, 6);
    cr_assert_str_eq(m->steps[0].label, "matmul_3 (x @ w)");
    cr_assert_eq(m->steps[1].kind, PS_KERNEL);
    cr_assert_eq(m->steps[1].domain, 12);
    cr_assert_eq(m->steps[1].grain, 4);
    cr_assert_eq(m->steps[1].refs[2].space, PB_ARENA);
    cr_assert_eq(m->steps[1].refs[2].at, 256);
    cr_assert_eq(m->steps[2].kind, PS_COPY);
    cr_assert_null(m->steps[2].label);
    cr_assert_eq(m->steps[3].kind, PS_LOOP);
    cr_assert_eq(m->steps[3].index, 0);
    cr_assert_eq(m->steps[3].domain, 3);
    cr_assert_eq(m->steps[3].grain, 8);
    cr_assert_eq(m->steps[3].refs[2].space, PB_CONST);
    cr_assert_eq(m->steps[4].dtype, CPU_F64);
    cr_assert_eq(m->steps[6].kind, PS_REDUCE);
    cr_assert_eq(m->steps[6].index, 3);
    cr_assert_eq(m->steps[6].nrefs, 1);
    cr_assert_eq(m->steps[6].refs[0].at, 128);
    cr_assert_str_eq(m->steps[6].label, "grad.z");
    cr_assert_eq(m->steps[7].kind, PS_RANKSUM);
    cr_assert_eq(m->steps[7].dtype, CPU_F64);
    cr_assert_eq(m->steps[7].domain, 3);
    cr_assert_eq(m->steps[7].refs[1].at, 2048);
    cr_assert_eq(m->out_refs[1].space, PB_PARAM);
    cr_assert_eq(m->out_refs[2].space, PB_INPUT);
    free(t);
    program_free(p);
}

/* Blank lines, runs of blanks and padded labels read; the canonical text comes out. */
Test(program, lenient_spacing_prints_canonical) {
    const char *loose = "\nprogram   q batch 2\n\n"
                        "func f   arena 16\n"
                        "\tin x f32 [2]\n"
                        "  out y f32 [2]   o0  \n"
                        "  kernel 0 2 1 o0 i0 i0   #   add two   \n"
                        "end\n";
    const char *canon = "program q batch 2\n"
                        "func f arena 16\n"
                        "  in x f32 [2]\n"
                        "  out y f32 [2] o0\n"
                        "  kernel 0 2 1 o0 i0 i0 # add two\n"
                        "end\n";
    Program *p = parse_ok(loose);
    char *t = program_to_text(p);
    cr_assert_str_eq(t, canon);
    free(t);
    program_free(p);
    /* The shortest spelling of doubles round trips. */
    const char *nums = "program q batch 1\n"
                       "param a f32 [] init normal 0.1 trainable\n"
                       "param b f32 [] init uniform 0.3333333333333333 trainable\n"
                       "setting s num -2.5e-07\n";
    p = parse_ok(nums);
    t = program_to_text(p);
    cr_assert_str_eq(t, nums);
    cr_assert_eq(p->params[1].init_a, 1.0 / 3.0);
    free(t);
    program_free(p);
}

/* ---- validation errors ---- */

static void bad(const char *text, int line, const char *needle) {
    char err[512] = "";
    Program *p = program_parse(text, NK, err, sizeof err);
    cr_assert_null(p, "accepted:\n%s", text);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "program:%d: ", line);
    cr_assert(!strncmp(err, prefix, strlen(prefix)), "expected '%s...', got '%s'", prefix, err);
    cr_assert(strstr(err, needle), "expected '%s' in '%s'", needle, err);
}

#define HEAD "program t batch 1\n"
#define PARAMS "param w f32 [2,3] init uniform 1 trainable\n"
#define FHEAD "func f arena 4096\n  in x f32 [2,2]\n  out y f32 [2,2] o0\n"

Test(program, bad_structure) {
    bad("", 1, "empty program");
    bad("param w f32 [2] init zeros 0 trainable\n", 1, "first line must be 'program");
    bad(HEAD "foo bar\n", 2, "unknown keyword 'foo'");
    bad(HEAD "program u batch 1\n", 2, "a second 'program' line");
    bad("program t batch 0\n", 1, "batch 0 is outside");
    bad("program t size 3\n", 1, "expected 'batch'");
    bad(HEAD PARAMS "param w f32 [1] init zeros 0 state\n", 3, "duplicate param 'w'");
    bad(HEAD "func f arena 0\nend\n" PARAMS, 4, "'param' after 'func' lines");
    bad(HEAD "input x f32 [1] batched 0 1 0\n" PARAMS, 3, "'param' after 'input' lines");
    bad(HEAD "func f arena 0\nend\nsetting a num 1\n", 4, "'setting' after 'func' lines");
    bad("setting a num 1\n", 1, "first line must be 'program");
    bad(HEAD FHEAD "  kernel 0 4 1 o0 i0 i0 # a label\n", 5, "func f (line 2) has no 'end'");
    bad(HEAD "kernel 0 1 1 a0\n", 2, "'kernel' outside a function");
    bad(HEAD "end\n", 2, "'end' outside a function");
    bad(HEAD FHEAD "  kernel 0 4 1 o0 i0 i0\n", 5, "func f (line 2) has no 'end'");
    bad(HEAD FHEAD "func g arena 0\nend\n", 5, "'func' inside func f (missing 'end'?)");
    bad(HEAD FHEAD "  frob 1 2\nend\n", 5, "unknown keyword 'frob' in func f");
    bad(HEAD FHEAD "  copy 4 a0 a8\n  out z f32 [] a0\nend\n", 6,
        "'out' after step lines");
    bad(HEAD FHEAD "  in z f32 []\nend\n", 5, "'in' after out or step lines");
    bad(HEAD "func f arena 0\nend x\n", 3, "'end' takes no fields");
    bad(HEAD "func f arena 0\nend\nfunc f arena 8\nend\n", 4, "duplicate func 'f'");
    bad(HEAD "func f arena -1\nend\n", 2, "arena size -1");
    bad(HEAD "func f#g arena 1\nend\n", 2, "name 'f#g'");
}

Test(program, bad_declarations) {
    bad(HEAD "param w f16 [2] init zeros 0 trainable\n", 2, "unknown dtype 'f16'");
    bad(HEAD "param w f32 [2,,3] init zeros 0 trainable\n", 2, "dims '[2,,3]'");
    bad(HEAD "param w f32 2,3 init zeros 0 trainable\n", 2, "dims '2,3' are not written");
    bad(HEAD "param w f32 [1,1,1,1,1,1,1] init zeros 0 trainable\n", 2, "more than 6");
    bad(HEAD "param w f32 [2,-3] init zeros 0 trainable\n", 2, "dims '[2,-3]'");
    bad(HEAD "param w f32 [2] init xavier 0 trainable\n", 2, "unknown init 'xavier'");
    bad(HEAD "param w f32 [2] init zeros 0 frozen\n", 2, "expected 'trainable' or 'state'");
    bad(HEAD "param w f32 [2] init uniform abc trainable\n", 2, "init scale 'abc'");
    bad(HEAD "param w f32 [2] init zeros 0\n", 2, "'param' takes 7 fields, got 6");
    bad(HEAD "input x f32 [2] both 0 1 0\n", 2, "expected 'batched' or 'fixed'");
    bad(HEAD "input x f32 [2] fixed 0 1 -2\n", 2, "input classes -2");
    bad(HEAD "setting a num\n", 2, "setting a: missing value");
    bad(HEAD "setting a num 1 2\n", 2, "text after the value");
    bad(HEAD "setting a int 3\n", 2, "expected 'num' or 'str'");
    bad(HEAD "setting a str \"abc\n", 2, "unterminated string");
    bad(HEAD "setting a str \"a\\qb\"\n", 2, "unknown escape '\\q'");
    bad(HEAD "setting a num 1\nsetting a num 2\n", 3, "duplicate setting 'a'");
    bad(HEAD "const c f32 [2] 0000803f\n", 2, "8 hex digits, expected 16");
    bad(HEAD "const c f32 [1] 0000zz3f\n", 2, "'zz' is not a hex byte");
    bad(HEAD "const c f32 [1] -\n", 2, "0 hex digits, expected 8");
    bad(HEAD "const c i32 [] 01000000\nconst c i32 [] 01000000\n", 3, "duplicate const 'c'");
}

Test(program, bad_refs) {
    /* arena bounds: offset alone for kernels, offset + size where known */
    bad(HEAD FHEAD "  kernel 0 4 1 a4096 i0 i0\nend\n", 5,
        "kernel step (kernel 0) names buffer a4096 beyond the arena (4096 bytes)");
    bad(HEAD FHEAD "  copy 512 a3840 a0\nend\n", 5,
        "copy step (destination) names buffer a3840 of 512 bytes beyond the arena (4096 bytes)");
    bad(HEAD FHEAD "  copy 16 a0 i0\n  copy 20 a0 i0\nend\n", 6,
        "copy step (source) needs 20 bytes at input i0 of 16 bytes");
    bad(HEAD PARAMS FHEAD "  kernel 0 4 1 o0 p1 i0\nend\n", 6,
        "names param p1 but there is 1 param");
    bad(HEAD FHEAD "  kernel 0 4 1 o0 i1 i0\nend\n", 5, "names input i1 but there is 1 input");
    bad(HEAD FHEAD "  kernel 0 4 1 o1 i0 i0\nend\n", 5, "names output o1 but there is 1 output");
    bad(HEAD FHEAD "  kernel 0 4 1 o0 c0 i0\nend\n", 5, "names const c0 but there are 0 consts");
    bad(HEAD FHEAD "  kernel 0 4 1 o0 x0 i0\nend\n", 5, "'x0' is not a buffer reference");
    bad(HEAD FHEAD "  kernel 0 4 1 o0 a-4 i0\nend\n", 5, "'a-4' is not a buffer reference");
    bad(HEAD FHEAD "  kernel 0 4 1 o0 a i0\nend\n", 5, "'a' is not a buffer reference");
    bad(HEAD FHEAD "  copy 4 i0 a0\nend\n", 5, "writes into input i0, which is read-only");
    bad(HEAD "const c f32 [] 00000000\n" FHEAD "  copy 4 c0 a0\nend\n", 6,
        "writes into const c0, which is read-only");
    /* outputs */
    bad(HEAD "func f arena 64\n  out y f32 [2] o0\n  out z f32 [2] o0\nend\n", 4,
        "output z refers to output o0");
    bad(HEAD "func f arena 64\n  out y f32 [4,4] a8\nend\n", 3,
        "output y names buffer a8 of 64 bytes beyond the arena (64 bytes)");
    bad(HEAD PARAMS "func f arena 64\n  out y f32 [4,4] p0\nend\n", 4,
        "output y needs 64 bytes at param p0 of 24 bytes");
    bad(HEAD "func f arena 64\n  out y f32 [2] i0\nend\n", 3, "names input i0 but there are 0");
}

Test(program, bad_steps) {
    bad(HEAD FHEAD "  kernel 6 4 1 o0 i0 i0\nend\n", 5,
        "kernel index 6 is beyond the kernel table (6 kernels)");
    bad(HEAD FHEAD "  kernel 0 4 0 o0 i0 i0\nend\n", 5, "kernel grain 0 is below 1");
    bad(HEAD FHEAD "  kernel 0 -4 1 o0 i0 i0\nend\n", 5, "kernel domain -4 is below 0");
    bad(HEAD FHEAD "  kernel 0 4 1\nend\n", 5, "at least one buffer");
    bad(HEAD FHEAD "  kernel x 4 1 o0\nend\n", 5, "kernel index 'x' is not an integer");
    bad(HEAD FHEAD "  lib matmull f32 1 2 2 2 0 0 ; o0 i0 i0\nend\n", 5,
        "unknown lib op 'matmull' (matmul conv2d");
    bad(HEAD FHEAD "  lib matmul f16 1 2 2 2 0 0 ; o0 i0 i0\nend\n", 5,
        "dtype 'f16' is not f32 or f64");
    bad(HEAD FHEAD "  lib matmul f32 1 2 2 ; o0 i0 i0\nend\n", 5, "lib matmul takes 6 args, got 3");
    bad(HEAD FHEAD "  lib matmul f32 1 2 2 2 0 0 o0 i0 i0\nend\n", 5, "missing ';'");
    bad(HEAD FHEAD "  lib matmul f32 1 2 2 2 0 2 ; o0 i0 i0\nend\n", 5, "lib matmul: matmul");
    bad(HEAD FHEAD "  lib conv2d f32 1 1 4 4 1 3 3 1 1 0 0 3 3 ; a0 a64 a128\nend\n", 5,
        "lib conv2d: conv2d");
    bad(HEAD FHEAD "  lib matmul f32 1 2 2 2 0 0 ; o0 i0\nend\n", 5,
        "lib matmul takes 3 buffers (out, inputs), got 2");
    bad(HEAD FHEAD "  lib matmul f32 1 2 3 2 0 0 ; o0 i0 a0\nend\n", 5,
        "lib step (matmul) needs 24 bytes at input i0 of 16 bytes");
    bad(HEAD FHEAD "  lib matmul f32 1 2 2 2 0 0 ; a4088 i0 i0\nend\n", 5,
        "lib step (matmul) names buffer a4088 of 16 bytes beyond the arena (4096 bytes)");
    bad(HEAD FHEAD "  lib matmul f32 1 2 2 2 0 0 ; a0 a8 i0\nend\n", 5,
        "output a0 (16 bytes) overlaps input a8 (16 bytes)");
    bad(HEAD FHEAD "  lib matmul f32 1 2 2 2 0 0 ; i0 a0 a16\nend\n", 5, "writes into input i0");
    bad(HEAD FHEAD "  copy 4 a0\nend\n", 5, "'copy' takes 3 fields, got 2");
    bad(HEAD FHEAD "  reduce 0\nend\n", 5, "'reduce' takes 2 fields, got 1 (reduce K REF)");
    bad(HEAD FHEAD "  reduce 1 o0\nend\n", 5, "reduce names output 1 but func f has 1 outputs");
    bad(HEAD FHEAD "  reduce -1 o0\nend\n", 5, "reduce output -1 is outside [0, 2147483647]");
    bad(HEAD FHEAD "  reduce 0 a4090\nend\n", 5,
        "reduce step names buffer a4090 of 16 bytes beyond the arena (4096 bytes)");
    bad(HEAD FHEAD "  reduce 0 i0 x\nend\n", 5, "'reduce' takes 2 fields, got 3");
    bad(HEAD "func f arena 64\n  in x f32 [2]\n  out n i32 [2] a0\n  reduce 0 a0\nend\n", 5,
        "reduce names output n, which is not f32 or f64");
    bad(HEAD FHEAD "  ranksum f32 2 a0\nend\n", 5, "'ranksum' takes 4 fields, got 3 (ranksum DTYPE COUNT OUT IN)");
    bad(HEAD FHEAD "  ranksum f16 2 a0 a64\nend\n", 5, "ranksum dtype 'f16' is not f32 or f64");
    bad(HEAD FHEAD "  ranksum f32 -2 a0 a64\nend\n", 5, "ranksum count -2 is outside");
    bad(HEAD FHEAD "  ranksum f32 2 i0 a0\nend\n", 5, "ranksum step (output) writes into input i0");
    bad(HEAD FHEAD "  ranksum f32 2000 a0 a64\nend\n", 5,
        "ranksum step (output) names buffer a0 of 8000 bytes beyond the arena (4096 bytes)");
    bad(HEAD FHEAD "  ranksum f32 5 o0 i0\nend\n", 5, "ranksum step (output) needs 20 bytes at output o0 of 16 bytes");
}

#define BODY "func body arena 0\n  in t i32 []\n  in c f32 [2]\n  out n f32 [2] o0\n" \
             "  kernel 2 2 1 o0 i1\nend\n"

Test(program, bad_loops) {
    bad(HEAD FHEAD "  loop nope 3 8 a0 i0\nend\n", 5,
        "loop body 'nope' is not a function of the program");
    bad(HEAD BODY FHEAD "  loop body 3 8 a0 i0 i0\nend\n", 11,
        "loop body body takes 2 inputs; the loop passes 3");
    bad(HEAD BODY FHEAD "  loop body 3 12 a0 i0\nend\n", 11,
        "carry input c has 8 bytes, the loop carries 12");
    bad(HEAD BODY FHEAD "  loop body -1 8 a0 i0\nend\n", 11, "loop trips -1");
    bad(HEAD BODY FHEAD "  loop body 3 8 a4092 i0\nend\n", 11,
        "loop step (carry out) names buffer a4092 of 8 bytes beyond the arena");
    bad(HEAD BODY FHEAD "  loop body 3 8 i0 a0\nend\n", 11, "writes into input i0");
    bad(HEAD "func b2 arena 0\n  in t f32 []\n  in c f32 [2]\n  out n f32 [2] o0\nend\n" FHEAD
             "  loop b2 3 8 a0 a8\nend\n",
        10, "input 0 (t) must be an i32 scalar");
    bad(HEAD "func b2 arena 0\n  in t i32 []\n  in c f32 [2]\nend\n" FHEAD
             "  loop b2 3 8 a0 a8\nend\n",
        9, "loop body b2 has 0 outputs");
    /* recursion: a -> b -> a, and a body calling itself */
    bad(HEAD
        "func a arena 64\n  in t i32 []\n  in c f32 [2]\n  out n f32 [2] o0\n"
        "  loop b 2 8 o0 i1\nend\n"
        "func b arena 64\n  in t i32 []\n  in c f32 [2]\n  out n f32 [2] o0\n"
        "  loop a 2 8 o0 i1\nend\n",
        12, "loop in b calls a recursively");
    bad(HEAD "func a arena 64\n  in t i32 []\n  in c f32 [2]\n  out n f32 [2] o0\n"
             "  loop a 2 8 o0 i1\nend\n",
        6, "loop in a calls a recursively");
}

/* Every prefix and every one-byte corruption of a valid text parses or
 * fails with a line-numbered message; never crashes (ASan watches). */
Test(program, truncations_and_corruptions_fail_cleanly) {
    size_t n = strlen(EVERY_KIND);
    char *buf = malloc(n + 1);
    const char subst[] = {'x', '#', ' ', '\n', '[', '9', '-', '"', '\\', ';', '\0'};
    for (size_t cut = 0; cut <= n; cut++) {
        for (size_t k = 0; k <= sizeof subst; k++) {
            memcpy(buf, EVERY_KIND, n + 1);
            if (k < sizeof subst) {
                if (cut == n) break;
                buf[cut] = subst[k];
            } else {
                buf[cut] = '\0';
            }
            char err[512] = "";
            Program *p = program_parse(buf, NK, err, sizeof err);
            if (p) {
                char *t = program_to_text(p);
                cr_assert_not_null(t);
                Program *q = program_parse(t, NK, err, sizeof err);
                cr_assert_not_null(q, "printed text does not parse: %s\n%s", err, t);
                char *t2 = program_to_text(q);
                cr_assert_str_eq(t, t2);
                free(t2);
                free(t);
                program_free(q);
                program_free(p);
            } else {
                cr_assert(!strncmp(err, "program:", 8), "%s", err);
            }
        }
    }
    free(buf);
}

/* ---- the runner ---- */

/* y = x @ w + b (matmul lib step, add kernel), outputs from every space. */
static const char *const MM =
    "program mm batch 1\n"
    "param w f32 [3,2] init uniform 1 trainable\n"
    "const two f32 [] 00000040\n"
    "const k f32 [2] 0000803f00004040\n"
    "func f arena 1024\n"
    "  in x f32 [2,3]\n"
    "  in b f32 [2,2]\n"
    "  out y f32 [2,2] o0\n"
    "  out w f32 [3,2] p0\n"
    "  out xc f32 [2,3] i0\n"
    "  out a f32 [2,2] a0\n"
    "  out s f32 [2,2] a128\n"
    "  out k f32 [2] c1\n"
    "  lib matmul f32 1 2 3 2 0 0 ; a0 i0 p0 # x @ w\n"
    "  kernel 0 4 1 o0 a0 i1 # + b\n"
    "  copy 16 a64 a0\n"
    "  kernel 1 4 2 a128 a64 c0 # * 2\n"
    "end\n";

Test(runner, matmul_kernels_copy_outputs) {
    Program *p = parse_ok(MM);
    Runner *r = runner_ok(p, 2, 42);
    cr_assert_eq(runner_program(r), p);
    cr_assert_not_null(runner_pool(r));
    const float *w = runner_param(r, 0);
    cr_assert_null(runner_param(r, 1));
    float x[6] = {1, 2, 3, -1, 0.5f, 4}, b[4] = {10, 20, 30, 40};
    float y[4], wo[6], xc[6], a[4], s[4], k[2];
    const void *ins[] = {x, b};
    void *outs[] = {y, wo, xc, a, s, k};
    runner_call(r, 0, ins, outs);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            float acc = 0;
            for (int q = 0; q < 3; q++) acc += x[i * 3 + q] * w[q * 2 + j];
            cr_assert_float_eq(a[i * 2 + j], acc, 1e-5, "a[%d][%d]", i, j);
            cr_assert_float_eq(y[i * 2 + j], acc + b[i * 2 + j], 1e-5);
            cr_assert_float_eq(s[i * 2 + j], 2 * acc, 1e-5);
        }
    cr_assert_arr_eq(wo, w, sizeof wo);
    cr_assert_arr_eq(xc, x, sizeof xc);
    cr_assert_eq(k[0], 1.0f);
    cr_assert_eq(k[1], 3.0f);
    /* arenas + params + consts (+ no op scratch for matmul) */
    cr_assert_eq(runner_memory_bytes(r), 1024 + 24 + 4 + 8);
    runner_free(r);
    program_free(p);
}

/* A batched, transposed f64 matmul and a conv2d against naive loops. */
Test(runner, lib_ops_against_naive_loops) {
    const char *text =
        "program lib batch 1\n"
        "param a f64 [2,7,5] init normal 1 trainable\n"
        "param b f64 [2,3,7] init uniform 2 trainable\n"
        "param x f32 [1,2,5,5] init normal 1 trainable\n"
        "param k f32 [3,2,3,3] init uniform 1 trainable\n"
        "func f arena 0\n"
        "  out c f64 [2,5,3] o0\n"
        "  out y f32 [1,3,5,5] o1\n"
        "  lib matmul f64 2 5 7 3 1 1 ; o0 p0 p1\n"
        "  lib conv2d f32 1 2 5 5 3 3 3 1 1 1 1 5 5 ; o1 p2 p3\n"
        "end\n";
    Program *p = parse_ok(text);
    Runner *r = runner_ok(p, 3, 5);
    const double *A = runner_param(r, 0), *B = runner_param(r, 1);
    const float *X = runner_param(r, 2), *K = runner_param(r, 3);
    double c[30];
    float y[75];
    void *outs[] = {c, y};
    runner_call(r, 0, NULL, outs);
    for (int bt = 0; bt < 2; bt++)
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 3; j++) {
                double acc = 0;
                for (int q = 0; q < 7; q++) /* a^T: a[b][q][i]; b^T: b[b][j][q] */
                    acc += A[bt * 35 + q * 5 + i] * B[bt * 21 + j * 7 + q];
                cr_assert_float_eq(c[bt * 15 + i * 3 + j], acc, 1e-12);
            }
    for (int o = 0; o < 3; o++)
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++) {
                double acc = 0;
                for (int ch = 0; ch < 2; ch++)
                    for (int u = 0; u < 3; u++)
                        for (int v = 0; v < 3; v++) {
                            int yy = i + u - 1, xx = j + v - 1;
                            if (yy < 0 || yy >= 5 || xx < 0 || xx >= 5) continue;
                            acc += (double)X[ch * 25 + yy * 5 + xx] *
                                   K[((o * 2 + ch) * 3 + u) * 3 + v];
                        }
                cr_assert_float_eq(y[o * 25 + i * 5 + j], acc, 1e-4, "y[%d][%d][%d]", o, i, j);
            }
    int64_t args[13] = {1, 2, 5, 5, 3, 3, 3, 1, 1, 1, 1, 5, 5};
    int64_t params = 70 * 8 + 42 * 8 + 50 * 4 + 54 * 4;
    cr_assert_eq(runner_memory_bytes(r),
                 params + (int64_t)cpu_op_scratch_bytes(CPU_CONV2D, CPU_F32, args,
                                                        tp_size(runner_pool(r))));
    runner_free(r);
    program_free(p);
}

Test(runner, params_from_seed) {
    const char *text = "program init batch 1\n"
                       "param u f32 [100] init uniform 0.5 trainable\n"
                       "param n f64 [3,7] init normal 2 trainable\n"
                       "param o f32 [4] init ones 1 state\n"
                       "param z f64 [4] init zeros 0 state\n"
                       "param i i32 [50] init uniform 100 state\n"
                       "param q bool [50] init uniform 1 state\n";
    Program *p = parse_ok(text);
    Runner *r1 = runner_ok(p, 1, 7), *r2 = runner_ok(p, 3, 7), *r3 = runner_ok(p, 1, 8);
    for (int i = 0; i < p->nparams; i++)
        cr_assert_arr_eq(runner_param(r1, i), runner_param(r2, i), ptensor_bytes(&p->params[i].t),
                         "param %d", i);
    cr_assert(memcmp(runner_param(r1, 0), runner_param(r3, 0), 400), "seed changes values");
    double d[100];
    rt_init_fill(d, 100, RT_INIT_UNIFORM, 0.5, 7, rt_init_stream("u"));
    const float *u = runner_param(r1, 0);
    for (int k = 0; k < 100; k++) {
        cr_assert_eq(u[k], (float)d[k]);
        cr_assert(fabsf(u[k]) <= 0.5f);
    }
    rt_init_fill(d, 21, RT_INIT_NORMAL, 2, 7, rt_init_stream("n"));
    cr_assert_arr_eq(runner_param(r1, 1), d, 21 * sizeof(double));
    const float *o = runner_param(r1, 2);
    const double *z = runner_param(r1, 3);
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(o[k], 1.0f);
        cr_assert_eq(z[k], 0.0);
    }
    rt_init_fill(d, 50, RT_INIT_UNIFORM, 100, 7, rt_init_stream("i"));
    const int32_t *iv = runner_param(r1, 4);
    const unsigned char *qv = runner_param(r1, 5);
    int nonzero = 0;
    for (int k = 0; k < 50; k++) {
        cr_assert_eq(iv[k], (int32_t)d[k]);
        cr_assert(qv[k] == 0 || qv[k] == 1);
        nonzero += qv[k];
    }
    cr_assert_eq(nonzero, 50); /* uniform draws are almost surely != 0 */
    /* Re-initialising restores the seed's values. */
    memset(runner_param(r1, 0), 0, 400);
    runner_init_params(r1, 7);
    cr_assert_arr_eq(runner_param(r1, 0), runner_param(r2, 0), 400);
    runner_init_params(r1, 8);
    cr_assert_arr_eq(runner_param(r1, 0), runner_param(r3, 0), 400);
    runner_free(r1);
    runner_free(r2);
    runner_free(r3);
    program_free(p);
}

/* inc: carry + 1; acc: carry + trip; outer: runs inc 4 times (nested);
 * capt: carry + a captured param. inc serves three loop steps. */
static const char *const LOOPS =
    "program loops batch 1\n"
    "param s f32 [3] init ones 1 state\n"
    "func main arena 64\n"
    "  in x f32 [3]\n"
    "  out y f32 [3] o0\n"
    "  out z f32 [3] a0\n"
    "  out w f32 [3] a16\n"
    "  out v f32 [3] a32\n"
    "  out u f32 [3] a48\n"
    "  loop inc 5 12 o0 i0 # y = x + 5\n"
    "  loop acc 6 12 a0 i0 # z = x + 0+1+...+5\n"
    "  loop outer 3 12 a16 i0 # w = x + 3*4\n"
    "  copy 12 a32 o0\n"
    "  loop capt 2 12 a32 a32 p0 # v = y + 2 s\n"
    "  loop inc 0 12 a48 a32 # no trips: u = v\n"
    "end\n"
    "func outer arena 16\n"
    "  in t i32 []\n"
    "  in c f32 [3]\n"
    "  out n f32 [3] a0\n"
    "  loop inc 4 12 a0 i1\n"
    "end\n"
    "func inc arena 0\n"
    "  in t i32 []\n"
    "  in c f32 [3]\n"
    "  out n f32 [3] o0\n"
    "  kernel 2 3 1 o0 i1\n"
    "end\n"
    "func acc arena 0\n"
    "  in t i32 []\n"
    "  in c f32 [3]\n"
    "  out n f32 [3] o0\n"
    "  kernel 3 3 1 o0 i1 i0\n"
    "end\n"
    "func capt arena 0\n"
    "  in t i32 []\n"
    "  in c f32 [3]\n"
    "  in s f32 [3]\n"
    "  out n f32 [3] o0\n"
    "  kernel 0 3 1 o0 i1 i2\n"
    "end\n";

Test(runner, loops_nested_and_shared_bodies) {
    Program *p = parse_ok(LOOPS);
    char *t = program_to_text(p);
    cr_assert_str_eq(t, LOOPS);
    free(t);
    Runner *r = runner_ok(p, 2, 1);
    float x[3] = {1, -2, 0.5f}, y[3], z[3], w[3], v[3], u[3];
    const void *ins[] = {x};
    void *outs[] = {y, z, w, v, u};
    for (int rep = 0; rep < 2; rep++) { /* a second call sees fresh state */
        runner_call(r, program_find_func(p, "main"), ins, outs);
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(y[i], x[i] + 5);
            cr_assert_eq(z[i], x[i] + 15);
            cr_assert_eq(w[i], x[i] + 12);
            cr_assert_eq(v[i], x[i] + 7);
            cr_assert_eq(u[i], x[i] + 7);
        }
    }
    /* A body can be called on its own. */
    int32_t trip = 4;
    float c[3] = {1, 2, 3}, n[3];
    const void *bins[] = {&trip, c};
    void *bouts[] = {n};
    runner_call(r, program_find_func(p, "acc"), bins, bouts);
    cr_assert_eq(n[0], 5);
    cr_assert_eq(n[2], 7);
    /* loop scratch (5 + 1 loop steps of 12 bytes) counts with the arenas */
    cr_assert_eq(runner_memory_bytes(r), 64 + 16 + 12 + 6 * 12);
    runner_free(r);
    program_free(p);
}

/* first: y = 2(x + 1) in arena bytes 0..16; second: the same values at
 * 16..64, then a loop whose body (arena of its own) writes its bytes 48..64
 * while the caller's x + 1 lies at its 48..64: z = (x + 6) + (x + 1). */
static const char *const SHARED =
    "program shared batch 1\n"
    "func first arena 64\n"
    "  in x f32 [4]\n"
    "  out y f32 [4] o0\n"
    "  kernel 2 4 1 a0 i0\n"
    "  kernel 0 4 1 o0 a0 a0\n"
    "end\n"
    "func second arena 128\n"
    "  in x f32 [4]\n"
    "  out z f32 [4] o0\n"
    "  kernel 2 4 1 a48 i0\n"
    "  kernel 2 4 1 a16 a48\n"
    "  loop bump 2 16 a96 a16\n"
    "  kernel 0 4 1 o0 a96 a48\n"
    "end\n"
    "func bump arena 64\n"
    "  in t i32 []\n"
    "  in c f32 [4]\n"
    "  out n f32 [4] o0\n"
    "  kernel 2 4 1 a48 i1\n"
    "  kernel 2 4 1 o0 a48\n"
    "end\n";

/* Entry points share one arena of the largest size (a loop body keeps its
 * own): memory counts 128 + 64 + the loop's 16 bytes of carry, and calls
 * that alternate, each over the other's leftovers, stay right. */
Test(runner, entry_points_share_one_arena) {
    Program *p = parse_ok(SHARED);
    Runner *r = runner_ok(p, 1, 1);
    cr_assert_eq(runner_memory_bytes(r), 128 + 64 + 16);
    float x[4] = {1, -2, 0.5f, 3}, y[4], z[4];
    const void *ins[] = {x};
    for (int rep = 0; rep < 3; rep++) {
        runner_call(r, program_find_func(p, "first"), ins, (void *[]){y});
        runner_call(r, program_find_func(p, "second"), ins, (void *[]){z});
        for (int i = 0; i < 4; i++) {
            cr_assert_eq(y[i], 2 * (x[i] + 1));
            cr_assert_eq(z[i], 2 * x[i] + 7, "z[%d] = %g: the body wrote its caller's arena", i, z[i]);
        }
        x[rep] += 1; /* the next round's inputs differ */
    }
    runner_free(r);
    program_free(p);
}

/* A long domain split over threads: every element once, same bytes. */
static const char *const WIDE =
    "program wide batch 1\n"
    "param a f64 [1000] init normal 1 trainable\n"
    "param b f64 [1000] init uniform 1 trainable\n"
    "param w f32 [40,30] init uniform 1 trainable\n"
    "func f arena 16384\n"
    "  in x f32 [20,40]\n"
    "  out s f64 [1000] a0\n"
    "  out i f64 [1000] a8000\n"
    "  out m f32 [20,30] o2\n"
    "  kernel 5 1000 7 a0 p0 p1\n"
    "  kernel 4 1000 3 a8000\n"
    "  lib matmul f32 1 20 40 30 0 0 ; o2 i0 p2\n"
    "end\n";

static void run_wide(int threads, double *s, double *iv, float *m) {
    Program *p = parse_ok(WIDE);
    Runner *r = runner_ok(p, threads, 99);
    cr_assert_eq(tp_size(runner_pool(r)), threads);
    float x[800];
    for (int k = 0; k < 800; k++) x[k] = (float)((k * 37) % 101) / 50.0f - 1.0f;
    const void *ins[] = {x};
    void *outs[] = {s, iv, m};
    runner_call(r, 0, ins, outs);
    const double *a = runner_param(r, 0), *b = runner_param(r, 1);
    for (int k = 0; k < 1000; k++) {
        cr_assert_eq(s[k], a[k] * a[k] + b[k]);
        cr_assert_eq(iv[k], k * 3.0 + 1.0, "element %d written %s", k,
                     iv[k] == 0 ? "never" : "more than once");
    }
    runner_free(r);
    program_free(p);
}

Test(runner, same_results_with_1_and_3_threads) {
    static double s1[1000], s3[1000], i1[1000], i3[1000];
    static float m1[600], m3[600];
    run_wide(1, s1, i1, m1);
    run_wide(3, s3, i3, m3);
    cr_assert_arr_eq(s1, s3, sizeof s1);
    cr_assert_arr_eq(i1, i3, sizeof i1);
    cr_assert_arr_eq(m1, m3, sizeof m1);
    float mx = 0;
    for (int k = 0; k < 600; k++) mx = fmaxf(mx, fabsf(m1[k]));
    cr_assert_gt(mx, 0.1f);
}

/* g = x + 1, then its reduce step, then h = g + 1: the hook sees g while h
 * is still unwritten, once per call; without a hook the step does nothing. */
static const char *const REDUCE =
    "program red batch 1\n"
    "func main arena 64\n"
    "  in x f32 [4]\n"
    "  out g f32 [4] a0\n"
    "  out h f32 [4] o1\n"
    "  kernel 2 4 1 a0 i0 # inc\n"
    "  reduce 0 a0 # grad.g\n"
    "  kernel 2 4 1 o1 a0 # inc\n"
    "end\n";

typedef struct {
    int calls, f, out;
    int64_t bytes;
    float seen[4], h_then[4];
    const float *h;
} Seen;

static void on_reduce(void *ctx, int f, int out, const void *value, int64_t bytes) {
    Seen *s = ctx;
    s->calls++, s->f = f, s->out = out, s->bytes = bytes;
    memcpy(s->seen, value, sizeof s->seen);
    memcpy(s->h_then, s->h, sizeof s->h_then);
}

Test(runner, reduce_step_calls_the_hook_between_steps) {
    Program *p = parse_ok(REDUCE);
    Runner *r = runner_ok(p, 2, 0);
    float x[4] = {1, -2, 0.5f, 8}, g[4], h[4] = {-7, -7, -7, -7};
    const void *ins[] = {x};
    void *outs[] = {g, h};
    runner_call(r, 0, ins, outs); /* no hook: nothing happens at the step */
    for (int i = 0; i < 4; i++) cr_assert_eq(h[i], x[i] + 2);
    Seen s = {.h = h};
    runner_set_collectives(r, &(PCollectives){.reduce = on_reduce, .ctx = &s});
    for (int i = 0; i < 4; i++) h[i] = -7;
    runner_call(r, 0, ins, outs);
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.f, 0);
    cr_assert_eq(s.out, 0);
    cr_assert_eq(s.bytes, 16);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(s.seen[i], x[i] + 1, "the value at the step");
        cr_assert_eq(s.h_then[i], -7, "the step after it had not run yet");
        cr_assert_eq(g[i], x[i] + 1);
        cr_assert_eq(h[i], x[i] + 2);
    }
    runner_set_collectives(r, NULL);
    runner_call(r, 0, ins, outs);
    cr_assert_eq(s.calls, 1);
    runner_free(r);
    program_free(p);
}

/* s = the sum over ranks of x: a copy in one process; with a rank_sum
 * hook standing for three equal ranks, 3 x. */
static void times_three(void *ctx, void *buf, int64_t n, bool f64) {
    int *calls = ctx;
    ++*calls;
    cr_assert_not(f64);
    for (int64_t i = 0; i < n; i++) ((float *)buf)[i] *= 3;
}

Test(runner, ranksum_step_copies_or_calls_the_hook) {
    Program *p = parse_ok("program rs batch 1\nfunc main arena 0\n  in x f32 [4]\n  out s f32 [4] o0\n"
                          "  ranksum f32 4 o0 i0 # bn.sum.ranks\nend\n");
    Runner *r = runner_ok(p, 1, 0);
    float x[4] = {1, -2, 0.5f, 8}, s[4];
    const void *ins[] = {x};
    void *outs[] = {s};
    runner_call(r, 0, ins, outs);
    cr_assert_arr_eq(s, x, sizeof s);
    int calls = 0;
    runner_set_collectives(r, &(PCollectives){.rank_sum = times_three, .ctx = &calls});
    runner_call(r, 0, ins, outs);
    cr_assert_eq(calls, 1);
    for (int i = 0; i < 4; i++) cr_assert_eq(s[i], 3 * x[i]);
    cr_assert_eq(x[1], -2, "the input is untouched");
    runner_free(r);
    program_free(p);
}

Test(runner, default_threads_and_errors) {
    Program *p = parse_ok(MM);
    Runner *r = runner_ok(p, 0, 3);
    cr_assert_eq(tp_size(runner_pool(r)), tp_default_size());
    runner_free(r);
    char err[256] = "";
    /* A kernel table shorter than the program needs. */
    cr_assert_null(runner_new(p, KERNELS, 1, 1, 0, err, sizeof err));
    cr_assert(strstr(err, "kernel 1 missing (1 kernels)"), "%s", err);
    PKernelFn holes[NK];
    memcpy(holes, KERNELS, sizeof holes);
    holes[0] = NULL;
    err[0] = '\0';
    cr_assert_null(runner_new(p, holes, NK, 1, 0, err, sizeof err));
    cr_assert(strstr(err, "kernel 0 missing"), "%s", err);
    err[0] = '\0';
    cr_assert_null(runner_new(NULL, KERNELS, NK, 1, 0, err, sizeof err));
    cr_assert(strstr(err, "no program"), "%s", err);
    /* A hand-broken program: a recursive loop, a ref out of range. */
    Program *q = parse_ok(LOOPS);
    q->funcs[program_find_func(q, "inc")].steps[0].kind = PS_LOOP;
    q->funcs[program_find_func(q, "inc")].steps[0].index = program_find_func(q, "outer");
    q->funcs[program_find_func(q, "inc")].steps[0].nrefs = 2;
    err[0] = '\0';
    cr_assert_null(runner_new(q, KERNELS, NK, 1, 0, err, sizeof err));
    cr_assert(strstr(err, "loop bodies call each other recursively"), "%s", err);
    program_free(q);
    q = parse_ok(MM);
    q->funcs[0].steps[1].refs[2].at = 5;
    err[0] = '\0';
    cr_assert_null(runner_new(q, KERNELS, NK, 1, 0, err, sizeof err));
    cr_assert(strstr(err, "buffer i5 out of range"), "%s", err);
    program_free(q);
    program_free(p);
    runner_free(NULL);
    program_free(NULL);
}
