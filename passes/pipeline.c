/* The pipeline and its debugging hooks. Dumps are named NNN.<pass>.ir (or
 * .dot) so `ls` lists them in pipeline order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ir/print.h"
#include "ir/shape.h"
#include "passes/pass.h"

static const PassDef PIPELINE[] = {
    {"verify", pass_verify, "check operands, attributes and types of every node"},
    {"decompose", pass_decompose, "rewrite composite ops (linear, batch_norm, ...) as primitives"},
    {"autodiff", pass_autodiff, "lower grad(y, x) nodes to adjoint graphs (reverse mode)"},
    {"simplify", pass_simplify, "exact algebraic identities (x*1, neg(neg x), ...) and splat constant folding"},
    {"cse", pass_cse, "merge nodes with equal op, operands, attributes and type"},
    {"dce", pass_dce, "drop values no output depends on"},
    {"licm", pass_licm, "compute loop-invariant values of loop bodies once, before the loop"},
    {"fuse", pass_fuse, "group elementwise chains, reductions and conv/matmul epilogues into kernels"},
    {"schedule", pass_schedule, "reorder nodes to lower the peak of live bytes"},
};

const PassDef *pass_pipeline(int *count) {
    *count = (int)(sizeof PIPELINE / sizeof PIPELINE[0]);
    return PIPELINE;
}

const PassDef *pass_find(const char *name) {
    int n;
    const PassDef *p = pass_pipeline(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(p[i].name, name) == 0) return &p[i];
    return NULL;
}

bool pass_verify(Module *m, PassCtx *ctx) { return ir_verify(m, ctx->d); }

/* Is `name` an element of the comma-separated list? */
static bool in_list(const char *list, const char *name) {
    size_t k = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == k && strncmp(p, name, k) == 0) return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

bool pass_names_valid(const char *list, Diag *d) {
    char buf[256];
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len >= sizeof buf) len = sizeof buf - 1;
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (!pass_find(buf)) {
            int n;
            const PassDef *all = pass_pipeline(&n);
            char names[1024] = "";
            for (int i = 0; i < n; i++) {
                strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
                strncat(names, all[i].name, sizeof names - strlen(names) - 1);
            }
            return diag_error(d, EXIT_BADINPUT, "unknown pass '%s' (passes: %s)", buf, names);
        }
        p = e ? e + 1 : NULL;
    }
    return true;
}

static bool dump(Module *m, const PipelineOptions *o, int index, const char *pass, Diag *d) {
    FILE *out = o->dump_out ? o->dump_out : stdout;
    char path[4096];
    if (o->dump_dir) {
        mkdir(o->dump_dir, 0777); /* as the backend's dumps do; exists already is fine */
        snprintf(path, sizeof path, "%s/%03d.%s.%s", o->dump_dir, index, pass,
                 o->dump_dot ? "dot" : "ir");
        out = fopen(path, "w");
        if (!out) return diag_error(d, EXIT_RUNTIME, "cannot write dump %s", path);
    } else {
        fprintf(out, "# ---- after pass %s ----\n", pass);
    }
    if (o->dump_dot)
        for (int i = 0; i < m->nfuncs; i++) ir_write_dot(m, m->funcs[i], out);
    else
        ir_print_module(m, out);
    if (o->dump_dir) fclose(out);
    return true;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

enum { MAX_RUN = 64 };

/* The passes to run, in order: exactly o->passes when given (repeats
 * allowed, like `opt -passes=`), else the pipeline without o->disable. */
static int run_order(const PipelineOptions *o, const PassDef **order, Diag *d) {
    int n = 0, count;
    if (!o->passes) {
        const PassDef *all = pass_pipeline(&count);
        for (int i = 0; i < count; i++)
            if (!in_list(o->disable, all[i].name)) order[n++] = &all[i];
        return n;
    }
    if (o->disable) return diag_error(d, EXIT_BADINPUT, "--passes and --disable do not combine"), -1;
    if (!*o->passes) return diag_error(d, EXIT_BADINPUT, "--passes names no pass"), -1;
    for (const char *p = o->passes; p && *p;) {
        const char *e = strchr(p, ',');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
        if (n == MAX_RUN) return diag_error(d, EXIT_BADINPUT, "--passes lists more than %d passes", MAX_RUN), -1;
        order[n++] = pass_find(name); /* names were checked */
        p = e ? e + 1 : NULL;
    }
    return n;
}

bool pipeline_run(Module *m, const PipelineOptions *o, Diag *d) {
    if (!pass_names_valid(o->dump_after, d) || !pass_names_valid(o->disable, d) ||
        !pass_names_valid(o->passes, d))
        return false;
    if (o->stop_after && !pass_names_valid(o->stop_after, d)) return false;
    if (o->stop_after && in_list(o->disable, o->stop_after))
        return diag_error(d, EXIT_BADINPUT, "pass %s is both the stop point and disabled", o->stop_after);
    const PassDef *order[MAX_RUN];
    int n = run_order(o, order, d), count;
    if (n < 0) return false;
    const PassDef *all = pass_pipeline(&count);
    PassCtx ctx = {d};
    for (int i = 0; i < n; i++) {
        const PassDef *p = order[i];
        double t0 = now_ms();
        if (!p->run(m, &ctx)) {
            diag_prefix(d, "pass %s", p->name);
            return false;
        }
        if (o->timings) fprintf(stderr, "pass %-12s %9.2f ms\n", p->name, now_ms() - t0);
        if (o->verify_each && !ir_verify(m, d)) {
            diag_prefix(d, "verifier after pass %s", p->name);
            return false;
        }
        /* dumps are numbered by pipeline position, or by position in --passes */
        int index = o->passes ? i : (int)(p - all);
        if ((o->dump_after_all || in_list(o->dump_after, p->name)) && !dump(m, o, index, p->name, d))
            return false;
        if (o->stop_after && strcmp(o->stop_after, p->name) == 0) break;
    }
    return true;
}
