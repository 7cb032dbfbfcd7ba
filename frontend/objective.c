/* Objective graphs -> IR. Each node is one op over earlier values: network
 * calls, adversaries (pgd), integrated gradients (ig), losses and
 * arithmetic. Scalars broadcast against tensors; everything else needs
 * equal shapes. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/objective.h"

typedef struct {
    ObjEnv *oe;
    const cJSON *js;
    const char *id;
    const char *file; /* the file the graph was written in (an include's) */
    char path[512];
    StrMap *vals;
} ONode;

static Builder *bld(ONode *o) { return o->oe->env->b; }
static Arena *ar(ONode *o) { return bld(o)->m->arena; }

static int oerr(ONode *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int oerr(ONode *o, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ferr(bld(o)->d, o->file, o->path, "%s", msg);
    return -1;
}

/* ---- attributes: numbers or "$name" references to params ---- */

static const cJSON *lookup(ONode *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o->js, key);
    for (int hops = 0; cJSON_IsString(v) && v->valuestring[0] == '$' && hops < 8; hops++) {
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(o->oe->env->doc, "params");
        const cJSON *hit = params ? cJSON_GetObjectItemCaseSensitive(params, v->valuestring + 1) : NULL;
        if (!hit) {
            oerr(o, "attribute '%s': '%s' names no params entry", key, v->valuestring);
            return NULL;
        }
        v = hit;
    }
    return v;
}

static bool num(ONode *o, const char *key, double dflt, double lo, double hi, double *out) {
    *out = dflt;
    if (!cJSON_GetObjectItemCaseSensitive(o->js, key)) return true;
    const cJSON *v = lookup(o, key);
    if (!v) return false;
    if (!cJSON_IsNumber(v)) return oerr(o, "attribute '%s' must be a number", key), false;
    if (!(v->valuedouble >= lo && v->valuedouble <= hi))
        return oerr(o, "attribute '%s' = %g is out of range [%g, %g]", key, v->valuedouble, lo, hi), false;
    *out = v->valuedouble;
    return true;
}

static bool integer(ONode *o, const char *key, int dflt, int lo, int hi, int *out) {
    double d;
    if (!num(o, key, dflt, lo, hi, &d)) return false;
    if (d != floor(d)) return oerr(o, "attribute '%s' must be an integer", key), false;
    *out = (int)d;
    return true;
}

static bool str(ONode *o, const char *key, const char *dflt, const char **out) {
    *out = dflt;
    if (!cJSON_GetObjectItemCaseSensitive(o->js, key)) return true;
    const cJSON *v = lookup(o, key);
    if (!v) return false;
    if (!cJSON_IsString(v)) return oerr(o, "attribute '%s' must be a string", key), false;
    *out = v->valuestring;
    return true;
}

/* A node's network mode: its "mode", else eval inside adversaries (as the
 * reference implementations attack with model.eval()) and train elsewhere. */
static bool mode_training(ONode *o, bool *training) {
    const char *mode;
    if (!str(o, "mode", o->oe->attack ? "eval" : "train", &mode)) return false;
    if (strcmp(mode, "train") && strcmp(mode, "eval"))
        return oerr(o, "attribute 'mode' must be \"train\" or \"eval\", got '%s'", mode), false;
    *training = strcmp(mode, "train") == 0;
    return true;
}

/* ---- helpers ---- */

static const char *vn(ONode *o, const char *part) {
    return part ? arena_printf(ar(o), "%s.%s", o->id, part) : o->id;
}

static int scalar_const(ONode *o, const char *part, double v, DType dt) {
    return b_const(bld(o), vn(o, part), v, type_scalar(dt));
}

/* Brings a and b to one shape when one of them is a scalar. */
static bool align(ONode *o, int *a, int *b) {
    Type ta = *b_type(bld(o), *a), tb = *b_type(bld(o), *b);
    if (ta.rank == 0 && tb.rank > 0) *a = b_broadcast(bld(o), vn(o, "lhs"), *a, &tb);
    else if (tb.rank == 0 && ta.rank > 0) *b = b_broadcast(bld(o), vn(o, "rhs"), *b, &ta);
    return *a >= 0 && *b >= 0;
}

static int mean_all(ONode *o, int v, const char *name) {
    Type t = *b_type(bld(o), v);
    int64_t axes[IR_MAX_RANK];
    for (int i = 0; i < t.rank; i++) axes[i] = i;
    int s = t.rank ? b_reduce(bld(o), OP_REDUCE_SUM, vn(o, "sum"), v, axes, t.rank, false) : v;
    return b_binary(bld(o), OP_MUL, name, s, scalar_const(o, "inv_n", 1.0 / (double)type_numel(&t), t.dtype));
}

static int total_all(ONode *o, int v) {
    Type t = *b_type(bld(o), v);
    int64_t axes[IR_MAX_RANK];
    for (int i = 0; i < t.rank; i++) axes[i] = i;
    return t.rank ? b_reduce(bld(o), OP_REDUCE_SUM, o->id, v, axes, t.rank, false) : v;
}

static int sum_rows(ONode *o, int v) {
    Type t = *b_type(bld(o), v);
    int64_t axes[IR_MAX_RANK];
    for (int i = 1; i < t.rank; i++) axes[i - 1] = i;
    if (t.rank < 2) return oerr(o, "sum_rows needs a batched value of rank >= 2");
    return b_reduce(bld(o), OP_REDUCE_SUM, o->id, v, axes, t.rank - 1, false);
}

/* ---- ops ---- */

static int op_net(ONode *o, int x) {
    const char *net;
    bool training;
    if (!str(o, "network", o->oe->network, &net) || !mode_training(o, &training)) return -1;
    NetEnv env = *o->oe->env;
    env.training = training;
    env.notes = false;
    env.value_prefix = o->id;
    return net_emit(&env, net, x);
}

/* ig(x, y[, baseline]) {steps, mode, network, target}. */
static int op_ig(ONode *o, const int *in, int n) {
    IgSpec s = {.baseline = n == 3 ? in[2] : -1, .name = o->id};
    if (!str(o, "network", o->oe->network, &s.network) || !mode_training(o, &s.training) ||
        !integer(o, "steps", 10, 1, 100000, &s.steps) || !str(o, "target", "logit", &s.target))
        return -1;
    if (strcmp(s.target, "logit") && strcmp(s.target, "ce"))
        return oerr(o, "attribute 'target' must be \"logit\" or \"ce\", got '%s'", s.target);
    if (n != 2 && n != 3) return oerr(o, "ig takes x, y and an optional baseline, %d given", n);
    return ig_emit(o->oe, &s, in[0], in[1]);
}

/* top_wrong(z, y): the most probable wrong class, i32 [N] (ART's i*). */
static int op_top_wrong(ONode *o, int z, int y) {
    Builder *b = bld(o);
    Type zt = *b_type(b, z);
    if (zt.rank != 2) return oerr(o, "top_wrong takes logits [N,C]");
    Attr oh[2] = {attr_int("depth", zt.dim[1]), attr_dtype("dtype", DT_BOOL)};
    int is_true = b_node(b, OP_ONE_HOT, vn(o, "is_true"), &y, 1, oh, 2);
    int low = b_broadcast(b, vn(o, "low"), scalar_const(o, "low.s", -INFINITY, zt.dtype), &zt);
    int ins[3] = {is_true, low, z};
    int masked = b_node(b, OP_SELECT, vn(o, "masked"), ins, 3, NULL, 0);
    Attr ax = attr_int("axis", 1);
    return b_node(b, OP_ARGMAX, o->id, &masked, 1, &ax, 1);
}

static const cJSON *find_loss(ONode *o, const char *name) {
    const cJSON *losses = cJSON_GetObjectItemCaseSensitive(o->oe->env->doc, "losses");
    const cJSON *l = losses ? cJSON_GetObjectItemCaseSensitive(losses, name) : NULL;
    if (!l) oerr(o, "no loss named '%s' in \"losses\"", name);
    return l;
}

static uint32_t name_stream(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static int op_pgd(ONode *o, int x, int y) {
    if (o->oe->mode == OBJ_GIVEN_ADV) {
        if (o->oe->pgd_seen++) return oerr(o, "objective(x, y, x_adv) replaces one pgd node; this graph has several");
        return o->oe->x_adv;
    }
    PgdSpec s = {.name = o->id, .stream = name_stream(o->id), .lo = 0, .hi = 1};
    const char *loss;
    if (!str(o, "loss", NULL, &loss) || !num(o, "eps", 0.3, 0, 1e6, &s.eps) ||
        !num(o, "alpha", 0.01, 0, 1e6, &s.alpha) || !integer(o, "steps", 10, 0, 100000, &s.steps) ||
        !str(o, "start", "none", &s.start) || !num(o, "start_scale", 0.001, 0, 1e6, &s.start_scale))
        return -1;
    if (!loss) return oerr(o, "pgd needs 'loss': the name of a graph in \"losses\"");
    if (strcmp(s.start, "none") && strcmp(s.start, "uniform") && strcmp(s.start, "normal"))
        return oerr(o, "attribute 'start' must be none, uniform or normal, got '%s'", s.start);
    if (!(s.loss = find_loss(o, loss))) return -1;
    s.loss_path = arena_printf(ar(o), "losses.%s", loss);
    const Module *m = bld(o)->m;
    for (int i = 0; i < m->ninputs; i++)
        if (strcmp(m->inputs[i].name, "x") == 0 && m->inputs[i].lo != m->inputs[i].hi)
            s.lo = m->inputs[i].lo, s.hi = m->inputs[i].hi;
    if (o->oe->key < 0) return oerr(o, "pgd needs a random key (train_step provides one)");
    return pgd_emit(o->oe, &s, x, y);
}

/* call: a graph of "losses" applied to the inputs, inline. */
static int op_call(ONode *o, const int *in, int n) {
    const char *name;
    if (!str(o, "graph", NULL, &name)) return -1;
    if (!name) return oerr(o, "call needs 'graph': the name of a graph in \"losses\"");
    const cJSON *g = find_loss(o, name);
    if (!g) return -1;
    int want = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(g, "inputs"));
    if (want != n) return oerr(o, "graph '%s' takes %d input(s), %d given", name, want, n);
    if (o->oe->depth >= 8) return oerr(o, "graph calls nest deeper than 8 (a graph calls itself?)");
    o->oe->depth++;
    int v = obj_emit_graph(o->oe, g, arena_printf(ar(o), "losses.%s", name), in, n);
    o->oe->depth--;
    return v;
}

/* ramp: to * min(1, progress / epochs): the IGR warm-up (SPEC §2). */
static int op_ramp(ONode *o) {
    double to, epochs;
    if (!num(o, "to", 1.0, -1e9, 1e9, &to) || !num(o, "epochs", 0, 0, 1e6, &epochs)) return -1;
    if (o->oe->progress < 0 || epochs == 0) return scalar_const(o, NULL, to, DT_F32);
    Builder *b = bld(o);
    int frac = b_binary(b, OP_MUL, vn(o, "frac"), o->oe->progress, scalar_const(o, "inv_epochs", 1.0 / epochs, DT_F32));
    int capped = b_binary(b, OP_MIN, vn(o, "capped"), frac, scalar_const(o, "one", 1.0, DT_F32));
    return b_binary(b, OP_MUL, o->id, capped, scalar_const(o, "to", to, DT_F32));
}

/* sum: weighted sum of scalars, weights numbers or "$name". */
static int op_sum(ONode *o, const int *in, int n) {
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(o->js, "weights");
    if (w && (!cJSON_IsArray(w) || cJSON_GetArraySize(w) != n))
        return oerr(o, "'weights' must list one weight per input (%d)", n);
    int acc = -1;
    const cJSON *wi = w ? w->child : NULL;
    for (int i = 0; i < n; i++, wi = wi ? wi->next : NULL) {
        int v = in[i];
        if (b_type(bld(o), v)->rank != 0) return oerr(o, "sum adds scalars; input %d is not one", i);
        if (wi) {
            ONode tmp = *o;
            cJSON *holder = cJSON_CreateObject();
            cJSON_AddItemReferenceToObject(holder, "w", (cJSON *)wi);
            tmp.js = holder;
            double k;
            bool ok = num(&tmp, "w", 1.0, -1e12, 1e12, &k);
            cJSON_Delete(holder);
            if (!ok) return -1;
            if (k != 1.0) v = b_binary(bld(o), OP_MUL, vn(o, "term"), v, scalar_const(o, "w", k, b_type(bld(o), v)->dtype));
        }
        acc = acc < 0 ? v : b_binary(bld(o), OP_ADD, i == n - 1 ? o->id : vn(o, "acc"), acc, v);
    }
    return acc;
}

static int composite(ONode *o, OpKind op, const int *in, int n) {
    Attr a[2];
    int na = 0;
    const char *red;
    double eps;
    if (op == OP_CROSS_ENTROPY || op == OP_KL_DIV || op == OP_MART_BCE) {
        if (!str(o, "reduction", "mean", &red)) return -1;
        if (strcmp(red, "mean") && strcmp(red, "sum") && strcmp(red, "none"))
            return oerr(o, "attribute 'reduction' must be mean, sum or none, got '%s'", red);
        a[na++] = attr_str("reduction", red);
    }
    if ((op == OP_KL_DIV || op == OP_COSINE_SIMILARITY) && cJSON_GetObjectItemCaseSensitive(o->js, "eps")) {
        if (!num(o, "eps", 0, 0, 1, &eps)) return -1;
        a[na++] = attr_float("eps", eps);
    }
    if (op == OP_SOFTMAX || op == OP_LOG_SOFTMAX) a[na++] = attr_int("axis", 1);
    return b_node(bld(o), op, o->id, in, n, a, na);
}

typedef struct {
    const char *name;
    OpKind op;
    int nin; /* -1: any */
} OpRow;

static const OpRow SIMPLE[] = {
    {"cross_entropy", OP_CROSS_ENTROPY, 2}, {"kl_div", OP_KL_DIV, 2},
    {"cosine_similarity", OP_COSINE_SIMILARITY, 2}, {"mart_bce", OP_MART_BCE, 2},
    {"pearson", OP_PEARSON, 2}, {"softmax", OP_SOFTMAX, 1}, {"log_softmax", OP_LOG_SOFTMAX, 1},
    {"add", OP_ADD, 2}, {"sub", OP_SUB, 2}, {"mul", OP_MUL, 2}, {"div", OP_DIV, 2},
    {"max", OP_MAX, 2}, {"min", OP_MIN, 2},
    {"neg", OP_NEG, 1}, {"abs", OP_ABS, 1}, {"exp", OP_EXP, 1}, {"log", OP_LOG, 1},
    {"relu", OP_RELU, 1}, {"softplus", OP_SOFTPLUS, 1}, {"sqrt", OP_SQRT, 1},
    {"stop_gradient", OP_STOP_GRADIENT, 1}, {"grad", OP_GRAD, 2}, {"logit", OP_GATHER, 2},
};

static const char *const SPECIAL[] = {"net", "pgd", "ig", "ramp", "sum", "mean", "total", "sum_rows",
                                      "one_minus", "scale", "call", "top_wrong", "ssr_lambda", NULL};

static int lower_simple(ONode *o, const OpRow *r, int *in, int n) {
    if (r->nin >= 0 && n != r->nin)
        return oerr(o, "%s takes %d input(s), %d given", r->name, r->nin, n);
    const OpInfo *info = op_info(r->op);
    if (info->cls == OC_COMPOSITE) return composite(o, r->op, in, n);
    if (n == 2 && info->pattern == PK_ELEMWISE && !align(o, &in[0], &in[1])) return -1;
    return b_node(bld(o), r->op, o->id, in, n, NULL, 0);
}

static int lower_special(ONode *o, const char *op, int *in, int n) {
    Builder *b = bld(o);
    int need = strcmp(op, "ramp") == 0 ? 0
               : (!strcmp(op, "pgd") || !strcmp(op, "top_wrong") || !strcmp(op, "ssr_lambda")) ? 2
               : (!strcmp(op, "sum") || !strcmp(op, "call") || !strcmp(op, "ig")) ? -1 : 1;
    if (!strcmp(op, "call")) return op_call(o, in, n);
    if (need >= 0 && n != need) return oerr(o, "%s takes %d input(s), %d given", op, need, n);
    if (!strcmp(op, "net")) return op_net(o, in[0]);
    if (!strcmp(op, "pgd")) return op_pgd(o, in[0], in[1]);
    if (!strcmp(op, "ig")) return op_ig(o, in, n);
    if (!strcmp(op, "top_wrong")) return op_top_wrong(o, in[0], in[1]);
    if (!strcmp(op, "ssr_lambda")) {
        int it;
        return integer(o, "iterations", 10, 1, 1000, &it) ? ssr_emit(o->oe, in[0], in[1], it, o->id) : -1;
    }
    if (!strcmp(op, "ramp")) return op_ramp(o);
    if (!strcmp(op, "sum")) return n ? op_sum(o, in, n) : oerr(o, "sum needs inputs");
    if (!strcmp(op, "mean")) return mean_all(o, in[0], o->id);
    if (!strcmp(op, "total")) return total_all(o, in[0]);
    if (!strcmp(op, "sum_rows")) return sum_rows(o, in[0]);
    DType dt = b_type(b, in[0])->dtype;
    if (!strcmp(op, "one_minus")) { /* of - x, `of` defaulting to 1 */
        double of;
        if (!num(o, "of", 1.0, -1e12, 1e12, &of)) return -1;
        int one = scalar_const(o, "one", of, dt), x = in[0];
        return align(o, &one, &x) ? b_binary(b, OP_SUB, o->id, one, x) : -1;
    }
    double by; /* scale */
    if (!num(o, "by", 1.0, -1e12, 1e12, &by)) return -1;
    int k = scalar_const(o, "by", by, dt), x = in[0];
    return align(o, &x, &k) ? b_binary(b, OP_MUL, o->id, x, k) : -1;
}

static const char *closest_op(const char *op) {
    const char *best = "net";
    size_t bs = 0;
    for (size_t i = 0; i < sizeof SIMPLE / sizeof SIMPLE[0] + 9; i++) {
        const char *c = i < sizeof SIMPLE / sizeof SIMPLE[0] ? SIMPLE[i].name : SPECIAL[i - sizeof SIMPLE / sizeof SIMPLE[0]];
        size_t s = 0;
        for (size_t k = 0; c[k] && op[k] && c[k] == op[k]; k++) s++;
        if (s > bs) bs = s, best = c;
    }
    return best;
}

static const char *const NODE_KEYS[] = {"id", "op", "inputs", "network", "mode", "steps", "loss",
                                        "eps", "alpha", "start", "start_scale", "to", "epochs",
                                        "weights", "by", "reduction", "graph", "of", "target",
                                        "iterations", NULL};

static bool op_known(const char *op) {
    for (size_t i = 0; i < sizeof SIMPLE / sizeof SIMPLE[0]; i++)
        if (strcmp(op, SIMPLE[i].name) == 0) return true;
    for (const char *const *s = SPECIAL; *s; s++)
        if (strcmp(op, *s) == 0) return true;
    return false;
}

static int lower(ONode *o, int *in, int n) {
    const char *op;
    if (!str(o, "op", NULL, &op)) return -1;
    if (!op) return oerr(o, "every node needs an 'op'");
    for (size_t i = 0; i < sizeof SIMPLE / sizeof SIMPLE[0]; i++)
        if (strcmp(op, SIMPLE[i].name) == 0) return lower_simple(o, &SIMPLE[i], in, n);
    for (const char *const *s = SPECIAL; *s; s++)
        if (strcmp(op, *s) == 0) return lower_special(o, op, in, n);
    return oerr(o, "unknown objective op '%s' (did you mean '%s'?)", op, closest_op(op));
}

/* ---- graphs ---- */

static int node_inputs(ONode *o, int *in, int cap) {
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(o->js, "inputs");
    if (!ins) return 0;
    if (!cJSON_IsArray(ins)) return oerr(o, "'inputs' must be a list of value ids");
    int n = 0;
    for (const cJSON *r = ins->child; r; r = r->next) {
        if (!cJSON_IsString(r) || n == cap) return oerr(o, "'inputs' must list at most %d ids", cap);
        in[n] = strmap_get(o->vals, r->valuestring);
        if (in[n++] < 0) return oerr(o, "input '%s' is not defined before this node", r->valuestring);
    }
    return n;
}

static bool bind_inputs(ObjEnv *oe, const cJSON *graph, const char *where, const int *vals,
                        int nvals, StrMap *map) {
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(graph, "inputs");
    int k = 0;
    for (const cJSON *it = cJSON_IsArray(ins) ? ins->child : NULL; it; it = it->next, k++) {
        if (!cJSON_IsString(it) || k >= nvals)
            return ferr(oe->env->b->d, doc_file_of(graph, oe->env->root_file), where, "'inputs' must name %d values", nvals);
        strmap_put(map, it->valuestring, vals[k]);
    }
    if (k != nvals)
        return ferr(oe->env->b->d, doc_file_of(graph, oe->env->root_file), where, "'inputs' must name %d values, names %d", nvals, k);
    return true;
}

/* The graph's structure was checked when the document was loaded
 * (obj_check_losses): ids are fresh, inputs defined, the output exists. */
int obj_emit_graph(ObjEnv *oe, const cJSON *graph, const char *where, const int *vals, int nvals) {
    Diag *d = oe->env->b->d;
    const char *file = doc_file_of(graph, oe->env->root_file); /* errors name the file it is in */
    StrMap *map = strmap_new();
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(graph, "nodes");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(graph, "output");
    int v = -1, i = 0;
    if (!bind_inputs(oe, graph, where, vals, nvals, map)) goto done;
    for (const cJSON *js = nodes->child; js; js = js->next, i++) {
        ONode o = {.oe = oe, .js = js, .file = file, .vals = map};
        o.id = arena_strdup(oe->env->b->m->arena, cJSON_GetObjectItemCaseSensitive(js, "id")->valuestring);
        snprintf(o.path, sizeof o.path, "%s.nodes[%d] (id '%s')", where, i, o.id);
        int in[16], n = node_inputs(&o, in, 16), r;
        if (n < 0 || (r = lower(&o, in, n)) < 0) {
            if (!diag_failed(d)) oerr(&o, "could not lower this node");
            goto done;
        }
        strmap_put(map, o.id, r);
    }
    v = strmap_get(map, out->valuestring);
done:
    strmap_free(map);
    return v;
}

/* ---- the structure of a graph, before (or without) emitting it ---- */

/* A node's references to other graphs of "losses" (call's graph, pgd's
 * loss) name entries that exist. */
static bool check_refs(Diag *d, const cJSON *losses, const char *file, const char *path,
                       const cJSON *node) {
    static const char *const refs[] = {"graph", "loss"};
    for (size_t k = 0; k < sizeof refs / sizeof *refs; k++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(node, refs[k]);
        if (!r) continue;
        if (!cJSON_IsString(r)) return ferr(d, file, path, "attribute '%s' must be a string", refs[k]);
        if (r->valuestring[0] != '$' && !cJSON_GetObjectItemCaseSensitive(losses, r->valuestring))
            return ferr(d, file, path, "no loss named '%s' in \"losses\"", r->valuestring);
    }
    return true;
}

/* One node: an object with a fresh string id, a known op, known keys and
 * inputs defined before it; defines its id in `defined`. */
static bool check_node(Diag *d, const cJSON *losses, const char *file, const char *where, int i,
                       const cJSON *js, StrMap *defined) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(js, "id");
    char path[512];
    snprintf(path, sizeof path, "%s.nodes[%d] (id '%s')", where, i, cJSON_IsString(id) ? id->valuestring : "?");
    if (!cJSON_IsObject(js)) return ferr(d, file, path, "must be an object");
    if (!cJSON_IsString(id)) return ferr(d, file, path, "every node needs a string 'id'");
    if (strmap_get(defined, id->valuestring) >= 0)
        return ferr(d, file, path, "id '%s' is defined twice", id->valuestring);
    if (!check_keys(d, file, path, js, NODE_KEYS)) return false;
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(js, "op");
    if (!op) return ferr(d, file, path, "every node needs an 'op'");
    if (!cJSON_IsString(op)) return ferr(d, file, path, "attribute 'op' must be a string");
    if (op->valuestring[0] != '$' && !op_known(op->valuestring))
        return ferr(d, file, path, "unknown objective op '%s' (did you mean '%s'?)", op->valuestring,
                    closest_op(op->valuestring));
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(js, "inputs");
    if (ins && !cJSON_IsArray(ins)) return ferr(d, file, path, "'inputs' must be a list of value ids");
    int n = 0;
    for (const cJSON *r = ins ? ins->child : NULL; r; r = r->next, n++) {
        if (!cJSON_IsString(r) || n == 16) return ferr(d, file, path, "'inputs' must list at most 16 ids");
        if (strmap_get(defined, r->valuestring) < 0)
            return ferr(d, file, path, "input '%s' is not defined before this node", r->valuestring);
    }
    if (!check_refs(d, losses, file, path, js)) return false;
    strmap_put(defined, id->valuestring, 0);
    return true;
}

bool obj_check_graph(const cJSON *doc, const cJSON *graph, const char *file, const char *where, Diag *d) {
    static const char *const keys[] = {"inputs", "nodes", "output", "description", NULL};
    if (!cJSON_IsObject(graph)) return ferr(d, file, where, "must be an object");
    if (!check_keys(d, file, where, graph, keys)) return false;
    const cJSON *losses = cJSON_GetObjectItemCaseSensitive(doc, "losses");
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(graph, "inputs");
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(graph, "nodes");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(graph, "output");
    if (ins && !cJSON_IsArray(ins)) return ferr(d, file, where, "'inputs' must be a list of names");
    if (!cJSON_IsArray(nodes) || !cJSON_IsString(out))
        return ferr(d, file, where, "needs a 'nodes' list and an 'output' id");
    StrMap *defined = strmap_new();
    bool ok = true;
    for (const cJSON *it = ins ? ins->child : NULL; ok && it; it = it->next) {
        if (!cJSON_IsString(it)) ok = ferr(d, file, where, "'inputs' must be a list of names");
        else if (strmap_get(defined, it->valuestring) >= 0)
            ok = ferr(d, file, where, "input '%s' is named twice", it->valuestring);
        else strmap_put(defined, it->valuestring, 0);
    }
    int i = 0;
    for (const cJSON *js = nodes->child; ok && js; js = js->next, i++)
        ok = check_node(d, losses, file, where, i, js, defined);
    if (ok && strmap_get(defined, out->valuestring) < 0)
        ok = ferr(d, file, where, "'output' names no node: '%s'", out->valuestring);
    strmap_free(defined);
    return ok;
}

bool obj_check_losses(const cJSON *doc, const char *root_file, Diag *d) {
    const cJSON *losses = cJSON_GetObjectItemCaseSensitive(doc, "losses");
    for (const cJSON *l = cJSON_IsObject(losses) ? losses->child : NULL; l; l = l->next) {
        char where[300];
        snprintf(where, sizeof where, "losses.%s", l->string);
        if (!obj_check_graph(doc, l, doc_file_of(l, root_file), where, d)) return false;
    }
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(doc, "objective");
    return !obj || obj_check_graph(doc, obj, doc_file_of(obj, doc_origin(doc, "objective", root_file)),
                                   "objective", d);
}
