/* The CUDA runner's host-side plan (runtime/cuda_plan.h), checked without a
 * device: the launch list of a hand-written program with nested loops
 * (every address and its order), parameter bindings, buffer sizes,
 * staging layout, graph replay; and the launch list of every function of
 * every MNIST model in models/ (every step gets its launches with the right
 * parameter count and buffers); train_grads' reduce steps launch nothing.
 *
 * The library plans come from runtime/cuda_lib_plan.c. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/program_build.h"
#include "frontend/frontend.h"
#include "passes/pass.h"
#include "runtime/cuda/cuda_plan.h"
#include "tests/runtime/loop_fixture.h"

TestSuite(cuda_plan, .timeout = 900);

static const CudaPlanner kPlanner = {cuda_kernel_grid, cuda_lib_plan, {false}};

static bool addr_eq(CudaAddr a, CudaSpace s, int index, int64_t off) {
    return a.space == s && a.index == index && a.off == off;
}

#define EXPECT_ADDR(a, s, i, o)                                                               \
    cr_expect(addr_eq((a), (s), (i), (o)), "%s:%d: address {%d, %d, %lld}, expected {%d, %d, %lld}", \
              __FILE__, __LINE__, (int)(a).space, (a).index, (long long)(a).off, (int)(s), (i),   \
              (long long)(o))

/* main loops `outer` 2 times (carry 16 bytes, capture w); outer loops
 * `inner` 3 times; inner runs kernel 0 over 4 elements. */
static const char kLoops[] =
    "program loops batch 1\n"
    "param w f32 [4] init zeros 0 trainable\n"
    "func main arena 512\n"
    "  in x f32 [4]\n"
    "  out y f32 [4] a256\n"
    "  loop outer 2 16 a256 i0 p0 # while_outer\n"
    "end\n"
    NESTED_LOOP_FUNCS;

static Program *parse(const char *text, int nkernels) {
    char err[1024];
    Program *p = program_parse(text, nkernels, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    return p;
}

Test(cuda_plan, nested_loops_unrolled) {
    Program *p = parse(kLoops, 1);
    CudaOpList l;
    char err[512];
    cr_assert(cuda_plan_func(p, 0, &kPlanner, NULL, 0, &l, err, sizeof err), "%s", err);
    const int so = cuda_slot(p, 0, 0), si = cuda_slot(p, 1, 0); /* main's loop, outer's */
    cr_assert_eq(so, 0);
    cr_assert_eq(si, 1);
    /* init copy; per outer trip: init copy, 3 x (kernel, body out -> carry,
     * carry -> out), outer out -> carry, carry -> out; output copy */
    cr_assert_eq(l.n, 1 + 2 * (1 + 3 * 3 + 2) + 1, "%d operations", l.n);
    int i = 0;
    cr_expect_eq(l.ops[i].kind, COP_COPY);
    EXPECT_ADDR(l.ops[i].addr[0], CA_ARENA, 0, 256);
    EXPECT_ADDR(l.ops[i].addr[1], CA_INPUT, 0, 0);
    cr_expect_eq(l.ops[i].bytes, 16);
    i++;
    for (int t = 0; t < 2; t++) {
        /* outer's loop: its carry out a0 of outer, init = outer's input 1 = main's carry */
        cr_expect_eq(l.ops[i].kind, COP_COPY);
        EXPECT_ADDR(l.ops[i].addr[0], CA_ARENA, 1, 0);
        EXPECT_ADDR(l.ops[i].addr[1], CA_ARENA, 0, 256);
        i++;
        for (int u = 0; u < 3; u++) {
            const CudaOp *k = &l.ops[i++];
            cr_assert_eq(k->kind, COP_KERNEL);
            cr_expect_str_eq(k->launch.kernel, "igrc_k0");
            cr_expect_eq(k->func, 2);
            cr_expect_eq(k->naddr, 4);
            cr_expect_eq(cuda_op_nparams(k), 6);
            cr_expect_eq(k->begin, 0);
            cr_expect_eq(k->end, 4);
            cr_expect_eq(k->launch.block[0], IGRC_CUDA_BLOCK);
            cr_expect_eq(k->launch.grid[0], kPlanner.kernel_grid(4));
            EXPECT_ADDR(k->addr[0], CA_ARENA, 2, 64);  /* inner's a64 */
            EXPECT_ADDR(k->addr[1], CA_ARENA, 1, 0);   /* the carry: outer's a0 */
            EXPECT_ADDR(k->addr[2], CA_PARAM, 0, 0);   /* w, captured twice */
            EXPECT_ADDR(k->addr[3], CA_TRIPS, si, 4 * u);
            /* inner's output a64 -> carry scratch -> the carry */
            EXPECT_ADDR(l.ops[i].addr[0], CA_CARRY, si, 0);
            EXPECT_ADDR(l.ops[i].addr[1], CA_ARENA, 2, 64);
            i++;
            EXPECT_ADDR(l.ops[i].addr[0], CA_ARENA, 1, 0);
            EXPECT_ADDR(l.ops[i].addr[1], CA_CARRY, si, 0);
            i++;
        }
        EXPECT_ADDR(l.ops[i].addr[0], CA_CARRY, so, 0);
        EXPECT_ADDR(l.ops[i].addr[1], CA_ARENA, 1, 0);
        i++;
        EXPECT_ADDR(l.ops[i].addr[0], CA_ARENA, 0, 256);
        EXPECT_ADDR(l.ops[i].addr[1], CA_CARRY, so, 0);
        i++;
    }
    cr_expect_eq(l.ops[i].step, -1, "the output copy");
    EXPECT_ADDR(l.ops[i].addr[0], CA_OUTPUT, 0, 0);
    EXPECT_ADDR(l.ops[i].addr[1], CA_ARENA, 0, 256);
    cuda_ops_free(&l);

    /* planning the body alone: its inputs are its own */
    cr_assert(cuda_plan_func(p, 2, &kPlanner, NULL, 0, &l, err, sizeof err), "%s", err);
    cr_assert_eq(l.n, 2);
    EXPECT_ADDR(l.ops[0].addr[3], CA_INPUT, 0, 0);
    EXPECT_ADDR(l.ops[1].addr[0], CA_OUTPUT, 0, 0);
    cuda_ops_free(&l);
    program_free(p);
}

Test(cuda_plan, memory_sizes) {
    Program *p = parse(kLoops, 1);
    CudaMemPlan m;
    char err[512];
    cr_assert(cuda_mem_plan(p, &kPlanner, &m, err, sizeof err), "%s", err);
    cr_expect_eq(m.nslots, 3);
    cr_expect_eq(m.arena[0], 512);
    cr_expect_eq(m.arena[1], 256);
    cr_expect_eq(m.trips[0], CUDA_ALIGN, "2 trips: 8 bytes, one aligned block");
    cr_expect_eq(m.carry[1], CUDA_ALIGN);
    cr_expect_eq(m.trips[2], 0, "a kernel step has no loop buffers");
    cr_expect_eq(m.params, CUDA_ALIGN);
    cr_expect_eq(m.consts, 0);
    cr_expect_eq(m.scratch, 0);
    /* main reaches outer and inner: 3 arenas + 2 loops' trips and carries */
    cr_expect_eq(cuda_mem_func_bytes(p, &m, 0), 512 + 256 + 256 + 4 * CUDA_ALIGN);
    cr_expect_eq(cuda_mem_func_bytes(p, &m, 2), 256, "inner alone: its arena");
    bool reach[3] = {false, false, false};
    cuda_func_reach(p, 1, reach);
    cr_expect(!reach[0] && reach[1] && reach[2]);
    cuda_mem_plan_free(&m);
    program_free(p);
}

/* Bound outputs go to their parameter after the unbound outputs' copies,
 * and never to the output buffer. */
Test(cuda_plan, bindings) {
    Program *p = parse("program b batch 1\n"
                       "param w f32 [4] init zeros 0 trainable\n"
                       "param v f32 [2] init zeros 0 state\n"
                       "func step arena 256\n"
                       "  in x f32 [4]\n"
                       "  out loss f32 [] a128\n"
                       "  out w f32 [4] a0\n"
                       "  kernel 0 4 1 a0 i0 p0 # sgd\n"
                       "  kernel 1 1 1 a128 a0 # loss\n"
                       "end\n",
                       2);
    CudaOpList l;
    char err[512];
    CudaBind b = {1, 0};
    cr_assert(cuda_plan_func(p, 0, &kPlanner, &b, 1, &l, err, sizeof err), "%s", err);
    cr_assert_eq(l.n, 4);
    cr_expect_str_eq(l.ops[0].launch.kernel, "igrc_k0");
    cr_expect_str_eq(l.ops[1].launch.kernel, "igrc_k1");
    EXPECT_ADDR(l.ops[2].addr[0], CA_OUTPUT, 0, 0);
    EXPECT_ADDR(l.ops[2].addr[1], CA_ARENA, 0, 128);
    cr_expect_eq(l.ops[2].bytes, 4);
    EXPECT_ADDR(l.ops[3].addr[0], CA_PARAM, 0, 0);
    EXPECT_ADDR(l.ops[3].addr[1], CA_ARENA, 0, 0);
    cr_expect_eq(l.ops[3].bytes, 16);
    cuda_ops_free(&l);
    CudaBind bad[] = {{1, 1}, {2, 0}, {0, 5}};
    for (int i = 0; i < 3; i++) {
        cr_expect_not(cuda_plan_func(p, 0, &kPlanner, &bad[i], 1, &l, err, sizeof err),
                      "binding %d", i);
        cr_expect(strstr(err, "binding 0"), "%s", err);
    }
    program_free(p);
}

/* Outputs that are the parameters swapped: each binding must read the old
 * value, so both go through their output buffers first. */
Test(cuda_plan, swapped_parameter_bindings) {
    Program *p = parse("program s batch 1\n"
                       "param u f32 [4] init zeros 0 trainable\n"
                       "param v f32 [4] init zeros 0 trainable\n"
                       "func step arena 0\n"
                       "  out u f32 [4] p1\n"
                       "  out v f32 [4] p0\n"
                       "end\n",
                       0);
    CudaOpList l;
    char err[512];
    CudaBind b[2] = {{0, 0}, {1, 1}};
    cr_assert(cuda_plan_func(p, 0, &kPlanner, b, 2, &l, err, sizeof err), "%s", err);
    cr_assert_eq(l.n, 4);
    EXPECT_ADDR(l.ops[0].addr[0], CA_OUTPUT, 0, 0);
    EXPECT_ADDR(l.ops[0].addr[1], CA_PARAM, 1, 0);
    EXPECT_ADDR(l.ops[1].addr[0], CA_OUTPUT, 1, 0);
    EXPECT_ADDR(l.ops[1].addr[1], CA_PARAM, 0, 0);
    EXPECT_ADDR(l.ops[2].addr[0], CA_PARAM, 0, 0);
    EXPECT_ADDR(l.ops[2].addr[1], CA_OUTPUT, 0, 0);
    EXPECT_ADDR(l.ops[3].addr[0], CA_PARAM, 1, 0);
    EXPECT_ADDR(l.ops[3].addr[1], CA_OUTPUT, 1, 0);
    cuda_ops_free(&l);
    program_free(p);
}

Test(cuda_plan, overlapping_copy_refused) {
    Program *p = parse("program o batch 1\n"
                       "func f arena 256\n"
                       "  in x f32 [4]\n"
                       "  out y f32 [4] a8\n"
                       "  copy 16 a0 i0 # a\n"
                       "  copy 16 a8 a0 # shift\n"
                       "end\n",
                       0);
    CudaOpList l;
    char err[512];
    cr_expect_not(cuda_plan_func(p, 0, &kPlanner, NULL, 0, &l, err, sizeof err));
    cr_expect(strstr(err, "overlapping copy") && strstr(err, "func f step 1"), "%s", err);
    program_free(p);
}

Test(cuda_plan, staging_layout) {
    Program *p = parse("program s batch 1\n"
                       "func f arena 64\n"
                       "  in x f32 [3]\n"
                       "  in k i32 [100]\n"
                       "  out y f32 [3] i0\n"
                       "  out e f64 [] a0\n"
                       "end\n"
                       "func g arena 0\n"
                       "end\n",
                       0);
    int64_t in[2], out[2];
    int64_t total = cuda_io_layout(&p->funcs[0], in, out);
    cr_expect_eq(in[0], 0);
    cr_expect_eq(in[1], CUDA_ALIGN);
    cr_expect_eq(out[0], 3 * CUDA_ALIGN, "x one block, the 400 bytes of k two");
    cr_expect_eq(out[1], 4 * CUDA_ALIGN);
    cr_expect_eq(total, 5 * CUDA_ALIGN);
    cr_expect_eq(cuda_io_layout(&p->funcs[1], NULL, NULL), 0);
    program_free(p);
}

Test(cuda_plan, graph_replay) {
    cr_expect_eq(cuda_run_mode(false, true, 3, 3), CUDA_RUN_DIRECT, "graphs off");
    cr_expect_eq(cuda_run_mode(true, false, 0, 0), CUDA_RUN_CAPTURE, "first call");
    cr_expect_eq(cuda_run_mode(true, true, 0, 0), CUDA_RUN_REPLAY, "later calls");
    cr_expect_eq(cuda_run_mode(true, true, 0, 1), CUDA_RUN_CAPTURE, "a binding since capture");
    unsetenv("IGRC_CUDA_GRAPHS");
    cr_expect(cuda_graphs_enabled());
    setenv("IGRC_CUDA_GRAPHS", "0", 1);
    cr_expect_not(cuda_graphs_enabled());
    setenv("IGRC_CUDA_GRAPHS", "1", 1);
    cr_expect(cuda_graphs_enabled());
}

/* ---- every model ---- */

static const char *source_dir(void) {
    const char *s = getenv("IGRC_SOURCE_DIR");
    return s && *s ? s : ".";
}

/* The address a top-level step's ref must get. */
static CudaAddr expected(int f, PRef r) {
    switch (r.space) {
    case PB_ARENA: return (CudaAddr){CA_ARENA, f, r.at};
    case PB_PARAM: return (CudaAddr){CA_PARAM, (int)r.at, 0};
    case PB_CONST: return (CudaAddr){CA_CONST, (int)r.at, 0};
    case PB_INPUT: return (CudaAddr){CA_INPUT, (int)r.at, 0};
    case PB_OUTPUT: return (CudaAddr){CA_OUTPUT, (int)r.at, 0};
    }
    return (CudaAddr){CA_NULL, 0, 0};
}

/* Checks the launches of top-level steps of f against the steps; returns
 * the number of kernel and lib steps checked. */
static int check_func(const char *model, const Program *p, int f, const CudaOpList *l) {
    const PFunc *fn = &p->funcs[f];
    int checked = 0, last_step = -1;
    for (int s = 0; s < fn->nsteps; s++) {
        const PStep *st = &fn->steps[s];
        int n = 0, want = 0;
        int64_t lib_sb = 0;
        if (st->kind == PS_LIB) {
            CudaLaunch ls[IGRC_CUDA_LIB_MAX_LAUNCHES];
            char err[256];
            want = kPlanner.lib_plan((CpuOp)st->index, (CpuDtype)st->dtype, st->args,
                                     &kPlanner.opt, ls, &lib_sb, err, sizeof err);
            cr_assert_geq(want, 1, "%s %s step %d: %s", model, fn->name, s, err);
        }
        for (int i = 0; i < l->n; i++) {
            const CudaOp *op = &l->ops[i];
            if (op->func != f || op->step != s) continue;
            cr_assert_geq(op->step, last_step, "%s %s: operations out of step order", model,
                          fn->name);
            last_step = op->step;
            n++;
            if (st->kind == PS_KERNEL) {
                char name[32];
                snprintf(name, sizeof name, "igrc_k%d", st->index);
                cr_assert_str_eq(op->launch.kernel, name, "%s %s step %d", model, fn->name, s);
                cr_assert_eq(op->naddr, st->nrefs);
                cr_assert_eq(cuda_op_nparams(op), st->nrefs + 2);
                cr_assert_eq(op->end, st->domain);
                cr_assert_gt(op->launch.grid[0], 0);
                for (int k = 0; k < st->nrefs; k++) {
                    CudaAddr e = expected(f, st->refs[k]);
                    cr_assert(addr_eq(op->addr[k], e.space, e.index, e.off),
                              "%s %s step %d (%s) buffer %d", model, fn->name, s, st->label, k);
                }
            } else if (st->kind == PS_LIB) {
                cr_assert_eq(op->kind, COP_LIB);
                cr_assert_eq(cuda_op_nparams(op), 5);
                for (int k = 0; k < 3; k++) {
                    CudaAddr e = k < st->nrefs ? expected(f, st->refs[k]) : (CudaAddr){CA_NULL, 0, 0};
                    cr_assert(addr_eq(op->addr[k], e.space, e.index, e.off),
                              "%s %s step %d (%s) buffer %d", model, fn->name, s, st->label, k);
                }
                for (int k = 0; k < st->nargs; k++) cr_assert_eq(op->args.a[k], st->args[k]);
                cr_assert_eq(op->addr[3].space, lib_sb > 0 ? CA_SCRATCH : CA_NULL,
                             "%s %s step %d: scratch", model, fn->name, s);
            }
        }
        if (st->kind == PS_REDUCE) {
            cr_assert_eq(n, 0, "%s %s step %d: a reduce step launched %d operations", model, fn->name, s, n);
            checked++;
        } else if (st->kind == PS_KERNEL && st->domain > 0) {
            cr_assert_eq(n, 1, "%s %s step %d (%s): %d launches", model, fn->name, s, st->label, n);
            checked++;
        } else if (st->kind == PS_LIB) {
            cr_assert_eq(n, want, "%s %s step %d (%s): %d launches of %d", model, fn->name, s,
                         st->label, n, want);
            checked++;
        }
    }
    return checked;
}

/* Ops of loop bodies: trips per loop step times the calls of its function. */
static int64_t body_calls(const Program *p, int f, int g) {
    if (f == g) return 1;
    int64_t n = 0;
    for (int s = 0; s < p->funcs[f].nsteps; s++)
        if (p->funcs[f].steps[s].kind == PS_LOOP)
            n += p->funcs[f].steps[s].domain * body_calls(p, p->funcs[f].steps[s].index, g);
    return n;
}

/* def: one -D (NULL: none). */
static void check_model(const char *rel, const char *def, int *funcs, int *steps, int *trained) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", source_dir(), rel);
    FrontendOptions fo = {&def, def != NULL, 2};
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(path, &fo, &d);
    cr_assert(m, "%s: %s", rel, d.msg);
    PipelineOptions po;
    memset(&po, 0, sizeof po);
    cr_assert(pipeline_run(m, &po, &d), "%s: pipeline: %s", rel, d.msg);
    Compiled c;
    cr_assert(codegen_build(m, &c, &d), "%s: codegen_build: %s", rel, d.msg);
    const Program *p = c.prog;
    *trained += program_find_func(p, "train_step") >= 0;
    char err[512];
    CudaMemPlan mp;
    cr_assert(cuda_mem_plan(p, &kPlanner, &mp, err, sizeof err), "%s: %s", rel, err);
    for (int f = 0; f < p->nfuncs; f++) {
        CudaOpList l;
        cr_assert(cuda_plan_func(p, f, &kPlanner, NULL, 0, &l, err, sizeof err), "%s: %s", rel, err);
        *steps += check_func(rel, p, f, &l);
        /* body kernels: one launch per trip of every enclosing loop */
        for (int g = 0; g < p->nfuncs; g++) {
            if (g == f) continue;
            int64_t calls = body_calls(p, f, g);
            for (int s = 0; s < p->funcs[g].nsteps; s++) {
                const PStep *st = &p->funcs[g].steps[s];
                if (st->kind != PS_KERNEL || st->domain <= 0) continue;
                int64_t n = 0;
                for (int i = 0; i < l.n; i++) n += l.ops[i].func == g && l.ops[i].step == s;
                cr_assert_eq(n, calls, "%s: %s step %d in %s: %lld launches, %lld calls", rel,
                             p->funcs[g].name, s, p->funcs[f].name, (long long)n, (long long)calls);
            }
        }
        cr_assert_leq(l.scratch_bytes, mp.scratch, "%s %s: scratch above the plan", rel,
                      p->funcs[f].name);
        /* every address inside its buffer's space */
        for (int i = 0; i < l.n; i++)
            for (int k = 0; k < l.ops[i].naddr; k++) {
                CudaAddr a = l.ops[i].addr[k];
                if (a.space == CA_ARENA)
                    cr_assert(a.index >= 0 && a.index < p->nfuncs && a.off < mp.arena[a.index],
                              "%s: arena address out of range", rel);
                if (a.space == CA_PARAM) cr_assert(a.index < p->nparams);
                if (a.space == CA_TRIPS) cr_assert(a.off < mp.trips[a.index]);
                if (a.space == CA_CARRY) cr_assert(mp.carry[a.index] > 0);
            }
        cuda_ops_free(&l);
        (*funcs)++;
    }
    cuda_mem_plan_free(&mp);
    compiled_free(&c);
    module_free(m);
}

Test(cuda_plan, every_mnist_model) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/models", source_dir());
    DIR *dp = opendir(dir);
    cr_assert_not_null(dp, "%s", dir);
    struct dirent *de;
    int models = 0, funcs = 0, steps = 0, trained = 0;
    while ((de = readdir(dp))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") || strncmp(de->d_name, "mnist_", 6))
            continue;
        char rel[512];
        snprintf(rel, sizeof rel, "models/%s", de->d_name);
        check_model(rel, NULL, &funcs, &steps, &trained);
        models++;
    }
    closedir(dp);
    cr_assert_geq(trained, 10, "only %d models with a train_step", trained);
    fprintf(stderr, "cuda plan: %d models (%d with train_step), %d functions, %d kernel/lib "
                    "steps checked\n", models, trained, funcs, steps);
}

/* train_grads' reduce steps (one per gradient) launch nothing: on CUDA the
 * data-parallel sum takes the gradients after the call. */
Test(cuda_plan, reduce_steps_launch_nothing) {
    int funcs = 0, steps = 0, trained = 0;
    check_model("models/mnist_smallcnn_standard.json", "train.micro_batch=1", &funcs, &steps, &trained);
    cr_assert_eq(trained, 1);
}
