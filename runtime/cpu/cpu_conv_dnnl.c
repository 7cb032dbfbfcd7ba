/* f32 convolutions through oneDNN (Debian's libdnnl-dev).
 *
 * Why: oneDNN's direct AVX-512 convolutions on blocked layouts (nChw16c
 * activations, OIhw16i16o weights) reach 75-95% of the cores' FMA ceiling
 * on SmallCNN's and ResNet-18's shapes, where im2col + OpenBLAS reaches
 * 15-25% (bench/conv_gflops.c, docs/performance.md). igrc's buffers stay
 * NCHW / OIHW: each call reorders its operands into the layouts the
 * primitive chose, in the calling thread's scratch, and the result back.
 * Everything a call needs (the primitive, its reorders, its memory
 * objects, the scratch layout) is made once per (op, shape, threads) and
 * kept; oneDNN's own scratchpad is ours too, so cpu_op_scratch_bytes
 * counts all of it.
 *
 * oneDNN runs on OpenMP threads (Debian builds it with libgomp): the call
 * sets the team to the pool's size while the pool's own workers wait. The
 * bits are the same from run to run at a given thread count, as igrc's
 * contract says (tests/runtime/test_cpu_ops.c checks repeat runs).
 * IGRC_CONV=im2col turns this path off (the benchmark's comparison). */
#include "runtime/cpu/cpu_conv_dnnl.h"

#ifdef IGRC_HAVE_DNNL

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cpu/cpu_ops_internal.h"

/* libgomp's, declared here rather than through <omp.h>, which is GCC's
 * private header (clang, which builds the fuzzers, does not see it). */
void omp_set_num_threads(int n);

enum { NOPS = 3 }; /* bufs: {out, in0, in1} */

typedef struct {
    int arg;                  /* DNNL_ARG_* */
    bool is_out;
    dnnl_memory_t user, prim; /* prim == user when the layouts agree */
    dnnl_primitive_t reorder; /* user -> prim (inputs), prim -> user (out) */
    size_t off;               /* prim's place in the scratch */
} Operand;

typedef struct Entry {
    struct Entry *next;
    CpuOp op;
    int64_t a[13];
    int threads;
    bool ok; /* false: oneDNN has no primitive for it; im2col runs */
    dnnl_primitive_t prim;
    Operand opd[NOPS];
    dnnl_memory_t pad; /* oneDNN's scratchpad, NULL when it needs none */
    size_t pad_off, bytes;
} Entry;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static Entry *g_cache;
static dnnl_engine_t g_eng;
static dnnl_stream_t g_stream;
static int g_state; /* 0 unknown, 1 on, -1 off */
static bool g_forced_off;

/* The engine and stream, made on first use; false when they cannot be. */
static bool engine(void) {
    if (!g_eng && dnnl_engine_create(&g_eng, dnnl_cpu, 0) != dnnl_success) return false;
    return g_stream ||
           dnnl_stream_create(&g_stream, g_eng, dnnl_stream_default_flags) == dnnl_success;
}

static bool on(void) {
    pthread_mutex_lock(&g_mu);
    if (!g_state) {
        const char *e = getenv("IGRC_CONV");
        g_state = (e && !strcmp(e, "im2col")) || !engine() ? -1 : 1;
    }
    bool yes = g_state > 0 && !g_forced_off;
    pthread_mutex_unlock(&g_mu);
    return yes;
}

bool cpu_dnnl_enabled(void) { return on(); }

void cpu_dnnl_set_enabled(bool enabled) {
    pthread_mutex_lock(&g_mu);
    g_forced_off = !enabled;
    pthread_mutex_unlock(&g_mu);
}

static void fail(const char *what, dnnl_status_t st) {
    fprintf(stderr, "igrc runtime: oneDNN %s failed (status %d)\n", what, (int)st);
    abort();
}
#define CK(call)                                  \
    do {                                          \
        dnnl_status_t st_ = (call);               \
        if (st_ != dnnl_success) fail(#call, st_); \
    } while (0)

static dnnl_memory_t memory(const dnnl_memory_desc_t *md) {
    dnnl_memory_t m;
    CK(dnnl_memory_create(&m, md, g_eng, DNNL_MEMORY_NONE));
    return m;
}

/* The operand's user memory (plain layout) and, when the primitive chose
 * another layout, its own memory and the reorder between them. */
static void bind(Operand *o, int arg, bool is_out, const dnnl_memory_desc_t *user,
                 const dnnl_memory_desc_t *chosen, size_t *bytes) {
    o->arg = arg, o->is_out = is_out, o->user = memory(user);
    if (dnnl_memory_desc_equal(user, chosen)) {
        o->prim = o->user, o->reorder = NULL;
        return;
    }
    o->prim = memory(chosen);
    const dnnl_memory_desc_t *from = is_out ? chosen : user, *to = is_out ? user : chosen;
    dnnl_primitive_desc_t rpd;
    CK(dnnl_reorder_primitive_desc_create(&rpd, from, g_eng, to, g_eng, NULL));
    CK(dnnl_primitive_create(&o->reorder, rpd));
    CK(dnnl_primitive_desc_destroy(rpd));
    o->off = *bytes;
    *bytes += (dnnl_memory_desc_get_size(chosen) + 63) / 64 * 64;
}

static void plain(dnnl_memory_desc_t *md, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                  dnnl_format_tag_t tag) {
    dnnl_dims_t d = {d0, d1, d2, d3};
    CK(dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, tag));
}

/* Strides and paddings; oneDNN wants the right padding that makes OH, OW
 * come out exactly. */
static void window(const int64_t *a, dnnl_dims_t st, dnnl_dims_t pl, dnnl_dims_t pr) {
    st[0] = a[7], st[1] = a[8], pl[0] = a[9], pl[1] = a[10];
    pr[0] = (a[11] - 1) * a[7] + a[5] - a[2] - a[9];
    pr[1] = (a[12] - 1) * a[8] + a[6] - a[3] - a[10];
}

/* The layout-free descriptors of x, w, y and the forward convolution every
 * kind starts from. */
static bool conv_descs(const int64_t *a, bool free_layout, dnnl_memory_desc_t md[3],
                       dnnl_convolution_desc_t *fwd) {
    dnnl_dims_t st, pl, pr;
    window(a, st, pl, pr);
    dnnl_format_tag_t img = free_layout ? dnnl_format_tag_any : dnnl_nchw;
    plain(&md[0], a[0], a[1], a[2], a[3], img);                                        /* x */
    plain(&md[1], a[4], a[1], a[5], a[6], free_layout ? dnnl_format_tag_any : dnnl_oihw); /* w */
    plain(&md[2], a[0], a[4], a[11], a[12], img);                                      /* y */
    return dnnl_convolution_forward_desc_init(fwd, dnnl_forward_training,
                                              dnnl_convolution_direct, &md[0], &md[1], NULL,
                                              &md[2], st, pl, pr) == dnnl_success;
}

/* Whether oneDNN may choose the layouts (blocked, reordered to and from
 * ours each call) or must work on NCHW / OIHW. Measured at batch 128 on
 * SmallCNN's conv1 (C = 1): blocked, its fastest kernel, loses to the plain
 * layouts' GEMM kernel forward (61 against 87 GFLOP/s, the reorder of the
 * 32-channel output included) and backward-data (13 against 49), and wins
 * backward-filter (45 against 19). With 16 channels or more blocked wins
 * every kind by 1.5-3x (bench/conv_gflops.c). */
static bool free_layout(CpuOp op, const int64_t *a) {
    return a[1] >= 16 || op == CPU_CONV2D_BWD_FILTER;
}

/* The primitive descriptor of op, scratchpad in our hands; NULL when
 * oneDNN cannot do it. */
static dnnl_primitive_desc_t make_pd(CpuOp op, const int64_t *a) {
    dnnl_memory_desc_t md[3];
    dnnl_convolution_desc_t fwd, d;
    if (!conv_descs(a, free_layout(op, a), md, &fwd)) return NULL;
    dnnl_primitive_attr_t attr;
    CK(dnnl_primitive_attr_create(&attr));
    CK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    dnnl_primitive_desc_t fpd = NULL, pd = NULL;
    bool made = dnnl_primitive_desc_create(&fpd, &fwd, attr, g_eng, NULL) == dnnl_success;
    dnnl_dims_t st, pl, pr;
    window(a, st, pl, pr);
    if (made && op == CPU_CONV2D) pd = fpd, fpd = NULL;
    else if (made && op == CPU_CONV2D_BWD_DATA &&
             dnnl_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &md[0],
                                                      &md[1], &md[2], st, pl, pr) ==
                 dnnl_success)
        made = dnnl_primitive_desc_create(&pd, &d, attr, g_eng, fpd) == dnnl_success;
    else if (made && op == CPU_CONV2D_BWD_FILTER &&
             dnnl_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &md[0],
                                                         &md[1], NULL, &md[2], st, pl,
                                                         pr) == dnnl_success)
        made = dnnl_primitive_desc_create(&pd, &d, attr, g_eng, fpd) == dnnl_success;
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_attr_destroy(attr);
    return made ? pd : NULL;
}

/* Which oneDNN argument each of bufs {out, in0, in1} is, and its plain
 * layout: images NCHW, weights OIHW. */
static void operand_roles(CpuOp op, const int64_t *a, int args[3], dnnl_query_t q[3],
                          dnnl_memory_desc_t user[3]) {
    dnnl_memory_desc_t x, w, y;
    plain(&x, a[0], a[1], a[2], a[3], dnnl_nchw);
    plain(&w, a[4], a[1], a[5], a[6], dnnl_oihw);
    plain(&y, a[0], a[4], a[11], a[12], dnnl_nchw);
    if (op == CPU_CONV2D) {
        int r[3] = {DNNL_ARG_DST, DNNL_ARG_SRC, DNNL_ARG_WEIGHTS};
        dnnl_query_t qq[3] = {dnnl_query_dst_md, dnnl_query_src_md, dnnl_query_weights_md};
        memcpy(args, r, sizeof r), memcpy(q, qq, sizeof qq);
        user[0] = y, user[1] = x, user[2] = w;
    } else if (op == CPU_CONV2D_BWD_DATA) {
        int r[3] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS};
        dnnl_query_t qq[3] = {dnnl_query_diff_src_md, dnnl_query_diff_dst_md,
                              dnnl_query_weights_md};
        memcpy(args, r, sizeof r), memcpy(q, qq, sizeof qq);
        user[0] = x, user[1] = y, user[2] = w;
    } else {
        int r[3] = {DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_SRC, DNNL_ARG_DIFF_DST};
        dnnl_query_t qq[3] = {dnnl_query_diff_weights_md, dnnl_query_src_md,
                              dnnl_query_diff_dst_md};
        memcpy(args, r, sizeof r), memcpy(q, qq, sizeof qq);
        user[0] = w, user[1] = x, user[2] = y;
    }
}

static void build(Entry *e) {
    omp_set_num_threads(e->threads);
    dnnl_primitive_desc_t pd = make_pd(e->op, e->a);
    if (!pd) return;
    int args[3];
    dnnl_query_t q[3];
    dnnl_memory_desc_t user[3];
    operand_roles(e->op, e->a, args, q, user);
    for (int i = 0; i < NOPS; i++)
        bind(&e->opd[i], args[i], i == 0, &user[i], dnnl_primitive_desc_query_md(pd, q[i], 0),
             &e->bytes);
    const dnnl_memory_desc_t *pad = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (pad && dnnl_memory_desc_get_size(pad) > 0) {
        e->pad = memory(pad), e->pad_off = e->bytes;
        e->bytes += dnnl_memory_desc_get_size(pad);
    }
    CK(dnnl_primitive_create(&e->prim, pd));
    CK(dnnl_primitive_desc_destroy(pd));
    e->ok = true;
}

/* The cached entry of (op, a, threads), built on first use. */
static Entry *entry(CpuOp op, const int64_t *a, int threads) {
    pthread_mutex_lock(&g_mu);
    Entry *e = g_cache;
    while (e && !(e->op == op && e->threads == threads && !memcmp(e->a, a, sizeof e->a)))
        e = e->next;
    if (!e) {
        if (!(e = calloc(1, sizeof *e))) fail("entry allocation", dnnl_out_of_memory);
        e->op = op, e->threads = threads, memcpy(e->a, a, sizeof e->a);
        build(e);
        e->next = g_cache, g_cache = e;
    }
    pthread_mutex_unlock(&g_mu);
    return e;
}

static void execute(dnnl_primitive_t p, int n, const dnnl_exec_arg_t *args) {
    CK(dnnl_primitive_execute(p, g_stream, n, args));
}

static void reorder(const Operand *o) {
    dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, o->is_out ? o->prim : o->user},
                            {DNNL_ARG_TO, o->is_out ? o->user : o->prim}};
    execute(o->reorder, 2, r);
}

bool cpu_dnnl_conv_run(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *a,
                       void *const *bufs) {
    if (dt != CPU_F32 || !on()) return false;
    int threads = tp_size(pool);
    Entry *e = entry(op, a, threads);
    if (!e->ok) return false;
    omp_set_num_threads(threads);
    char *scratch = e->bytes ? cpu_scratch(e->bytes) : NULL;
    dnnl_exec_arg_t args[NOPS + 1];
    for (int i = 0; i < NOPS; i++) {
        const Operand *o = &e->opd[i];
        CK(dnnl_memory_set_data_handle(o->user, bufs[i]));
        if (o->reorder) CK(dnnl_memory_set_data_handle(o->prim, scratch + o->off));
        if (o->reorder && !o->is_out) reorder(o);
        args[i] = (dnnl_exec_arg_t){o->arg, o->prim};
    }
    int n = NOPS;
    if (e->pad) {
        CK(dnnl_memory_set_data_handle(e->pad, scratch + e->pad_off));
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->pad};
    }
    execute(e->prim, n, args);
    if (e->opd[0].reorder) reorder(&e->opd[0]);
    CK(dnnl_stream_wait(g_stream));
    return true;
}

bool cpu_dnnl_conv_scratch(CpuOp op, CpuDtype dt, const int64_t *a, int threads,
                           size_t *bytes) {
    if (dt != CPU_F32 || !on()) return false;
    Entry *e = entry(op, a, threads);
    *bytes = e->bytes;
    return e->ok;
}

/* OpenMP's workers, by default, spin for a while after each convolution
 * waiting for the next one, and on a machine with as many threads as
 * cores that takes a core from the thread pool's kernels in between:
 * SmallCNN's standard step ran at 1,730-1,940 img/s so on 2 cores and at
 * 2,430-2,580 with OMP_WAIT_POLICY=passive. libgomp reads the variable
 * once, when it loads, before main; so an executable started without it
 * sets it and executes itself again, once (the variable is then set). */
void cpu_dnnl_settle_env(char **argv) {
    const char *conv = getenv("IGRC_CONV");
    if (getenv("OMP_WAIT_POLICY") || (conv && !strcmp(conv, "im2col"))) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) == 0) execv("/proc/self/exe", argv);
    /* exec failed: run on with spinning workers, slower but correct */
}

#else /* !IGRC_HAVE_DNNL */

void cpu_dnnl_settle_env(char **argv) { (void)argv; }

bool cpu_dnnl_enabled(void) { return false; }

void cpu_dnnl_set_enabled(bool enabled) { (void)enabled; }

bool cpu_dnnl_conv_run(ThreadPool *pool, CpuOp op, CpuDtype dt, const int64_t *a,
                       void *const *bufs) {
    (void)pool, (void)op, (void)dt, (void)a, (void)bufs;
    return false;
}

bool cpu_dnnl_conv_scratch(CpuOp op, CpuDtype dt, const int64_t *a, int threads,
                           size_t *bytes) {
    (void)op, (void)dt, (void)a, (void)threads, (void)bytes;
    return false;
}

#endif
