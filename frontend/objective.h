/* Objective graphs: the training objective (and the losses its adversaries
 * maximise) as a graph over network calls, lowered to IR entry points.
 * Format: docs/graph-format.md, "Objectives". */
#ifndef IGRC_FRONTEND_OBJECTIVE_H
#define IGRC_FRONTEND_OBJECTIVE_H

#include "frontend/internal.h"

/* How an objective graph is being emitted. */
typedef enum {
    OBJ_TRAIN,     /* pgd nodes run their inner maximisation; ramps read `progress` */
    OBJ_GIVEN_ADV, /* the one pgd node is replaced by the input x_adv; ramps at full value */
} ObjMode;

typedef struct {
    NetEnv *env;          /* builder, document, network defaults */
    const char *network;  /* the model's network */
    ObjMode mode;
    int x_adv;            /* OBJ_GIVEN_ADV: the x_adv input */
    int progress;         /* OBJ_TRAIN: f32 scalar input (epochs done), else -1 */
    int key;              /* i32[2] random key input, -1 if none */
    const char *entry;    /* entry point name, for naming loop bodies */
    int pgd_seen;
    int depth;            /* nesting of graph calls */
    bool attack;          /* inside an adversary: networks default to eval mode */
} ObjEnv;

/* The structure of a graph of "losses" or the objective, without emitting
 * it: keys, known ops, ids defined once and before use, the output, and
 * references to other losses. obj_check_losses checks every loss (used or
 * not) and the objective when the document is loaded. */
bool obj_check_graph(const cJSON *doc, const cJSON *graph, const char *file, const char *where, Diag *d);
bool obj_check_losses(const cJSON *doc, const char *root_file, Diag *d);

/* Emits a graph (the objective, or a loss of "losses") whose "inputs" are
 * bound to vals; returns its output value. `where` is its JSON path. */
int obj_emit_graph(ObjEnv *oe, const cJSON *graph, const char *where, const int *vals, int nvals);

/* The pieces obj_emit_graph lowers through (frontend/ig.c, frontend/pgd.c). */
typedef struct {
    int steps;            /* m path points */
    bool training;        /* network mode */
    const char *network;
    const char *target;   /* "logit" (the true logit) or "ce" (the loss) */
    int baseline;         /* value id, or -1 for the zero baseline */
    const char *name;     /* the node's id: names its values */
} IgSpec;
int ig_emit(ObjEnv *oe, const IgSpec *s, int x, int y);
typedef struct {
    const cJSON *loss;     /* the loss graph maximised */
    const char *loss_path;
    double eps, alpha;
    int steps;
    const char *start;     /* "none", "uniform" (in the eps-ball), "normal" */
    double start_scale;    /* standard deviation of a normal start */
    double lo, hi;         /* the input's value range */
    uint32_t stream;       /* random stream of the start */
    const char *name;
} PgdSpec;
int pgd_emit(ObjEnv *oe, const PgdSpec *s, int x, int y);
/* Per-sample top eigenvalue of J^T (diag p - p p^T) J, z the logits of x
 * (frontend/ssr.c); [N]. */
int ssr_emit(ObjEnv *oe, int x, int z, int iterations, const char *name);

/* Optimiser updates as IR (frontend/optim.c), PyTorch's formulas. */
typedef struct {
    const char *kind;  /* "adam" or "sgd" */
    double momentum, weight_decay;
    bool nesterov;
    double beta1, beta2, eps;
} OptimSpec;

/* For every trainable parameter i (pv[i] its value, gv[i] its gradient)
 * adds outputs "<param>" (updated) and the optimiser state outputs
 * ("optim.exp_avg.<param>", ...), creating the state parameters. lr and
 * step (1-based, for Adam's bias correction) are f32 scalar values. */
bool optim_emit(Builder *b, const OptimSpec *o, int np, const int *pv, const int *gv, int lr,
                int step, const char *file);

/* Builds the entry points objective(x, y, x_adv) and train_step(...) when
 * the document has an "objective"; ig(x, y) always. */
bool objective_build(Module *m, const cJSON *doc, const char *file, const char *network, Diag *d);

#endif
