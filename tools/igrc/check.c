/* igrc check: validate a graph file and summarise it. */
#include <stdio.h>
#include <string.h>

#include "ir/flops.h"
#include "tools/igrc/driver.h"

static const char HELP[] =
    "usage: igrc check FILE [-D key=value]... [--batch N]\n"
    "\n"
    "Validates FILE (a graph file, or IR text ending in .ir) and prints its inputs,\n"
    "the output shape of every graph node of `predict`, the parameter count\n"
    "(a line `parameters: N`, trainable values only; batch-norm running statistics\n"
    "are counted apart as state), and the FLOPs of one forward pass.\n";

static void print_inputs(const Module *m) {
    printf("inputs:\n");
    for (int i = 0; i < m->ninputs; i++) {
        const InputDesc *in = &m->inputs[i];
        char t[128];
        printf("  %-12s %s", in->name, type_str(&in->type, t, sizeof t));
        if (in->lo != in->hi) printf("  range [%g, %g]", in->lo, in->hi);
        if (in->classes) printf("  classes %d", in->classes);
        printf("\n");
    }
}

/* The graph file's nodes with their result shapes (from the frontend's
 * notes), or every non-source node for a module read from IR text. */
static void print_nodes(const Module *m, const Function *f) {
    printf("nodes of %s:\n", f->name);
    char t[128];
    if (m->nnotes) {
        for (int i = 0; i < m->nnotes; i++)
            printf("  %-28s %-14s %s\n", m->notes[i].path, m->notes[i].op,
                   type_str(&f->nodes[m->notes[i].value].type, t, sizeof t));
        return;
    }
    for (int i = 0; i < f->n; i++) {
        const Node *n = &f->nodes[i];
        if (op_info(n->op)->cls == OC_SOURCE) continue;
        printf("  %-28s %-14s %s\n", n->name, op_name(n->op), type_str(&n->type, t, sizeof t));
    }
}

static void print_flops(Module *m, const CommonArgs *a) {
    Diag d;
    diag_init(&d);
    PipelineOptions quiet = {.stop_after = "decompose"};
    (void)a;
    if (!pipeline_run(m, &quiet, &d)) {
        printf("FLOPs: unavailable (%s)\n", d.msg);
        return;
    }
    Function *f = module_find_func(m, "predict");
    if (!f) return;
    int64_t total = function_flops(f), b = m->batch > 0 ? m->batch : 1;
    printf("FLOPs per forward pass: %lld per image (%.3f GFLOP per batch of %lld)\n",
           (long long)(total / b), (double)total / 1e9, (long long)b);
}

int cmd_check(int argc, char **argv) {
    CommonArgs a = {0};
    for (int i = 1; i < argc; i++) {
        static const char *const pipeline_opts[] = {"--dump-after", "--dump-after-all", "--stop-after",
                                                     "--disable", "--dump-dir", "--verify-each",
                                                     "--time-passes", NULL};
        for (const char *const *p = pipeline_opts; *p; p++)
            if (strcmp(argv[i], *p) == 0)
                return usage_error("check", "%s belongs to igrc dump and exec, not check", *p);
        int r = common_option(&a, argc, argv, &i);
        if (r < 0) return EXIT_BADINPUT;
        if (r) continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(HELP, stdout);
            return EXIT_OK;
        }
        if (argv[i][0] == '-' || a.file) return usage_error("check", "unexpected argument '%s'", argv[i]);
        a.file = argv[i];
    }
    if (!a.file) return usage_error("check", "no graph file given");
    Diag d;
    diag_init(&d);
    Module *m = load_module(&a, &d);
    if (!m) return report(&d);
    printf("model: %s (%s)\nbatch: %lld\n", m->name, a.file, (long long)m->batch);
    print_inputs(m);
    Function *f = module_find_func(m, "predict");
    if (f) print_nodes(m, f);
    printf("parameters: %lld\n", (long long)module_param_count(m, true));
    int64_t optim = 0;
    for (int i = 0; i < m->nparams; i++)
        if (strncmp(m->params[i].name, "optim.", 6) == 0) optim += type_numel(&m->params[i].type);
    printf("state values: %lld (batch-norm statistics)\n",
           (long long)(module_param_count(m, false) - module_param_count(m, true) - optim));
    printf("optimiser state values: %lld\n", (long long)optim);
    printf("entry points:");
    for (int i = 0; i < m->nfuncs; i++)
        if (!strchr(m->funcs[i]->name, '.')) printf(" %s", m->funcs[i]->name);
    printf("\n");
    printf("parameter tensors: %d\n", m->nparams);
    print_flops(m, &a);
    module_free(m);
    return EXIT_OK;
}
