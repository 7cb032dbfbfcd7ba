/* The memory plan of codegen_build (codegen/program_build.h) on every
 * composed model in models/ (every *.json there), after the default pipeline:
 *   (a) two values whose lifetimes [first, last] intersect never share a
 *       byte of [offset, offset + bytes);
 *   (b) every offset is 64-byte aligned and offset + bytes <= arena;
 *   (c) arena <= unshared (sharing never costs bytes);
 *   (d) every arena buffer a step of the program names (and every output
 *       ref, read after the last step) is the offset of a planned value
 *       alive at that step - the plan's lifetimes cover the program.
 * Prints per model the train_step arena against the unshared bytes (the
 * largest arena's function where there is no train_step). The
 * MNIST models run at batch 2; ResNet-18 (CIFAR, 3x32x32) at batch 1 in a
 * test of its own, to keep the run short. Also where codegen_build puts the
 * reduce steps of train_grads (runtime/program/program.h): one per
 * gradient, right after the step that computes it, so the data-parallel
 * sum of the last layers' gradients overlaps the first layers' backward. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/contract.h"
#include "codegen/program_build.h"
#include "frontend/frontend.h"
#include "passes/pass.h"
#include "runtime/cpu/cpu_ops.h"

#define ALIGN 64

TestSuite(memplan, .timeout = 900);

static const char *source_dir(void) {
    const char *s = getenv("IGRC_SOURCE_DIR");
    return s && *s ? s : ".";
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The value planned at offset `at` that is alive at step i, or NULL. */
static const PlanValue *alive_at(const PlanFunc *pl, int64_t at, int i) {
    for (int k = 0; k < pl->n; k++)
        if (pl->v[k].offset == at && pl->v[k].first <= i && i <= pl->v[k].last) return &pl->v[k];
    return NULL;
}

/* Checks (a)-(d) on one function's plan; returns the number of problems.
 * Adds the arena refs checked under (d) to *refs. */
static int check_plan(const char *model, const PlanFunc *pl, const PFunc *pf, int *refs) {
    int bad = 0;
    for (int i = 0; i < pl->n; i++) {
        const PlanValue *x = &pl->v[i];
        if (x->offset % ALIGN || x->offset < 0 || x->bytes < 0 || x->offset + x->bytes > pl->arena) {
            if (bad++ < 5)
                cr_expect_fail("%s %s: value %s at %lld (%lld bytes) is unaligned or outside "
                               "the arena of %lld bytes",
                               model, pl->func, x->name, (long long)x->offset,
                               (long long)x->bytes, (long long)pl->arena);
        }
        if (x->first > x->last && bad++ < 5)
            cr_expect_fail("%s %s: value %s has lifetime [%d, %d]", model, pl->func, x->name,
                           x->first, x->last);
        for (int j = i + 1; j < pl->n; j++) {
            const PlanValue *y = &pl->v[j];
            bool live = x->first <= y->last && y->first <= x->last;
            bool bytes = x->offset < y->offset + y->bytes && y->offset < x->offset + x->bytes;
            if (live && bytes && bad++ < 5)
                cr_expect_fail("%s %s: %s [%lld, +%lld) live [%d, %d] and %s [%lld, +%lld) "
                               "live [%d, %d] overlap",
                               model, pl->func, x->name, (long long)x->offset,
                               (long long)x->bytes, x->first, x->last, y->name,
                               (long long)y->offset, (long long)y->bytes, y->first, y->last);
        }
    }
    if (pl->arena > pl->unshared && bad++ < 5)
        cr_expect_fail("%s %s: arena %lld > unshared %lld", model, pl->func,
                       (long long)pl->arena, (long long)pl->unshared);
    cr_expect_eq(pf->arena_bytes, pl->arena, "%s %s: program arena %lld, plan %lld", model,
                 pl->func, (long long)pf->arena_bytes, (long long)pl->arena);
    /* (d) the program's arena refs against the plan's lifetimes */
    for (int s = 0; s < pf->nsteps; s++)
        for (int k = 0; k < pf->steps[s].nrefs; k++) {
            const PRef *r = &pf->steps[s].refs[k];
            *refs += r->space == PB_ARENA;
            if (r->space == PB_ARENA && !alive_at(pl, r->at, s) && bad++ < 5)
                cr_expect_fail("%s %s: step %d (%s) ref %d names arena offset %lld, where "
                               "no planned value is alive",
                               model, pl->func, s, pf->steps[s].label ? pf->steps[s].label : "",
                               k, (long long)r->at);
        }
    for (int k = 0; k < pf->noutputs; k++) {
        const PRef *r = &pf->out_refs[k];
        if (r->space == PB_ARENA && !alive_at(pl, r->at, pf->nsteps) && bad++ < 5)
            cr_expect_fail("%s %s: output %d at arena offset %lld is not alive after the "
                           "last step",
                           model, pl->func, k, (long long)r->at);
    }
    return bad;
}

/* Model file rel (under the source tree) through the frontend (settings
 * defs, batch), the pipeline and codegen into *c; the module to free. */
static Module *build_model(const char *rel, const char *const *defs, int ndefs, int64_t batch, Compiled *c) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", source_dir(), rel);
    FrontendOptions fo = {defs, ndefs, batch};
    Diag d;
    diag_init(&d);
    Module *m = frontend_load(path, &fo, &d);
    cr_assert(m, "%s: %s", rel, d.msg);
    PipelineOptions po;
    memset(&po, 0, sizeof po);
    cr_assert(pipeline_run(m, &po, &d), "%s: pipeline: %s", rel, d.msg);
    cr_assert(codegen_build(m, c, &d), "%s: codegen_build: %s", rel, d.msg);
    return m;
}

static void check_model(const char *rel, int64_t batch) {
    double t0 = now_s();
    Compiled c;
    Module *m = build_model(rel, NULL, 0, batch, &c);
    int bad = 0, refs = 0;
    const PlanFunc *shown = NULL; /* train_step, else the largest arena */
    for (int i = 0; i < c.prog->nfuncs; i++) {
        const PlanFunc *pl = &c.plans[i];
        bad += check_plan(rel, pl, &c.prog->funcs[i], &refs);
        if (!shown || (strcmp(shown->func, "train_step") &&
                       (!strcmp(pl->func, "train_step") || pl->arena > shown->arena)))
            shown = pl;
    }
    cr_assert(shown, "%s: no functions", rel);
    cr_expect_gt(refs, 0, "%s: no step uses the arena", rel);
    fprintf(stderr,
            "memplan %-38s batch %lld: %-10s arena %10lld of %10lld unshared bytes (%.3f; %d "
            "values, %d funcs, %d arena refs) [%.1f s]\n",
            rel, (long long)batch, shown->func, (long long)shown->arena,
            (long long)shown->unshared,
            shown->unshared ? (double)shown->arena / (double)shown->unshared : 1.0, shown->n,
            c.prog->nfuncs, refs, now_s() - t0);
    cr_expect_eq(bad, 0, "%s: %d plan problems", rel, bad);
    compiled_free(&c);
    module_free(m);
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every models/<name>.json, sorted, except ResNet-18 (its own test). */
Test(memplan, mnist_models) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/models", source_dir());
    DIR *dp = opendir(dir);
    cr_assert(dp, "cannot open %s", dir);
    char *names[256];
    int n = 0;
    for (struct dirent *e; (e = readdir(dp)) && n < 256;) {
        size_t k = strlen(e->d_name);
        if (k > 5 && !strcmp(e->d_name + k - 5, ".json") && !strstr(e->d_name, "resnet18"))
            names[n++] = strdup(e->d_name);
    }
    closedir(dp);
    qsort(names, (size_t)n, sizeof *names, by_name);
    cr_assert_gt(n, 0, "no models in %s", dir);
    for (int i = 0; i < n; i++) {
        char rel[PATH_MAX];
        snprintf(rel, sizeof rel, "models/%s", names[i]);
        check_model(rel, 2);
        free(names[i]);
    }
}

Test(memplan, resnet18) { check_model("models/resnet18_trades_igr.json", 1); }

/* The standard SmallCNN with micro-batches: each gradient of train_grads
 * has one reduce step, right after the step writing its buffer (or after
 * other reduce steps there), fc3's before conv1's, and convolution work
 * still follows the first one; train_step has none. */
Test(memplan, reduce_steps_follow_their_gradients) {
    const char *defs[] = {"train.micro_batch=2"};
    Compiled c;
    Module *m = build_model("models/mnist_smallcnn_standard.json", defs, 1, 4, &c);
    const Program *p = c.prog;
    int fg = program_find_func(p, ENTRY_TRAIN_GRADS), ts = program_find_func(p, ENTRY_TRAIN_STEP);
    cr_assert(fg >= 0 && ts >= 0);
    for (int s = 0; s < p->funcs[ts].nsteps; s++) cr_expect_neq(p->funcs[ts].steps[s].kind, PS_REDUCE);
    const PFunc *f = &p->funcs[fg];
    int grads = 0, first = -1, at_fc3 = -1, at_conv1 = -1;
    for (int k = 0; k < f->noutputs; k++) {
        if (strncmp(f->outputs[k].name, OUT_GRAD_PREFIX, strlen(OUT_GRAD_PREFIX))) continue;
        grads++;
        int found = 0;
        for (int s = 0; s < f->nsteps; s++) {
            const PStep *st = &f->steps[s];
            if (st->kind != PS_REDUCE || st->index != k) continue;
            found++;
            int w = s - 1;
            while (w >= 0 && f->steps[w].kind == PS_REDUCE) w--;
            cr_assert_geq(w, 0, "%s: reduce step %d has no step before it", f->outputs[k].name, s);
            cr_expect(f->steps[w].refs[0].space == st->refs[0].space && f->steps[w].refs[0].at == st->refs[0].at,
                      "%s: reduce step %d does not follow the step computing it", f->outputs[k].name, s);
            cr_expect(f->out_refs[k].space == st->refs[0].space && f->out_refs[k].at == st->refs[0].at,
                      "%s: the reduce step names another buffer than the output", f->outputs[k].name);
            if (first < 0 || s < first) first = s;
            if (!strcmp(f->outputs[k].name, "grad.fc3.weight")) at_fc3 = s;
            if (!strcmp(f->outputs[k].name, "grad.conv1.weight")) at_conv1 = s;
        }
        cr_expect_eq(found, 1, "%s: %d reduce steps", f->outputs[k].name, found);
    }
    cr_expect_eq(grads, 14, "SmallCNN has 14 parameter tensors");
    cr_expect(at_fc3 >= 0 && at_conv1 > at_fc3, "fc3 at step %d, conv1 at %d", at_fc3, at_conv1);
    int convs_after = 0;
    for (int s = first + 1; s < f->nsteps; s++)
        convs_after += f->steps[s].kind == PS_LIB &&
                       (f->steps[s].index == CPU_CONV2D_BWD_DATA || f->steps[s].index == CPU_CONV2D_BWD_FILTER);
    cr_expect_geq(convs_after, 4, "only %d convolution steps follow the first reduce step", convs_after);
    compiled_free(&c);
    module_free(m);
}

/* Kernels are shared across batch sizes: SmallCNN TRADES+IGR's predict
 * (batch 128) and attrib_step (eval.attack_batch 16) launch the same conv1
 * ReLU kernel over 8x fewer elements, and no kernel is compiled twice. */
Test(memplan, one_kernel_serves_every_batch_size) {
    Compiled c;
    Module *m = build_model("models/mnist_smallcnn_trades_igr.json", NULL, 0, 128, &c);
    const Program *p = c.prog;
    const PStep *relu[2] = {NULL, NULL};
    const char *fns[2] = {ENTRY_PREDICT, ENTRY_ATTRIB_STEP};
    for (int j = 0; j < 2; j++) {
        int fi = program_find_func(p, fns[j]);
        cr_assert_geq(fi, 0, "%s", fns[j]);
        for (int s = 0; s < p->funcs[fi].nsteps && !relu[j]; s++) {
            const PStep *st = &p->funcs[fi].steps[s];
            if (st->kind == PS_KERNEL && st->label && !strcmp(st->label, "relu1")) relu[j] = st;
        }
        cr_assert(relu[j], "%s has no relu1 kernel step", fns[j]);
    }
    cr_expect_eq(relu[0]->index, relu[1]->index, "relu1 compiled twice");
    cr_expect_eq(relu[0]->domain, 8 * relu[1]->domain);
    for (int i = 0; i < c.nkernels; i++)
        for (int j = i + 1; j < c.nkernels; j++)
            cr_expect_not(kernel_same(c.kernels[i], c.kernels[j]), "%s and %s are the same code",
                          c.kernels[i]->name, c.kernels[j]->name);
    compiled_free(&c);
    module_free(m);
}
