/* Lowering networks and blocks to IR. A network (or a block instance) is
 * a list of layer nodes; each layer becomes IR nodes named after its id,
 * and its parameters get PyTorch state_dict names (prefix + id + ".weight"). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/internal.h"
#include "frontend/net_internal.h"

#define MAX_BLOCK_DEPTH 16
/* Nodes are emitted depth-first from their uses: a node listed before
 * its inputs nests one level deeper. Bounded so that a long chain listed
 * backwards is an error, not a stack overflow. */
#define MAX_EMIT_DEPTH 2000


Arena *net_arena(Net *n) { return n->env->b->m->arena; }
Diag *net_diag(Net *n) { return n->env->b->d; }

bool net_err(Cur *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool net_err(Cur *c, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ferr(net_diag(c->net), c->net->file, c->jpath, "%s", msg);
}

/* ---- attribute values, with "$name" references to block args or params ---- */

static const cJSON *resolve(Cur *c, const cJSON *v, const char *key) {
    for (int hops = 0; cJSON_IsString(v) && v->valuestring[0] == '$'; hops++) {
        const char *ref = v->valuestring + 1;
        const cJSON *hit = c->net->args ? cJSON_GetObjectItemCaseSensitive(c->net->args, ref) : NULL;
        if (!hit) {
            const cJSON *params = cJSON_GetObjectItemCaseSensitive(c->net->env->doc, "params");
            hit = params ? cJSON_GetObjectItemCaseSensitive(params, ref) : NULL;
        }
        if (!hit) {
            net_err(c, "attribute '%s': '$%s' names no block argument or params entry", key, ref);
            return NULL;
        }
        if (hops >= 8) {
            net_err(c, "attribute '%s': '$%s' refers on through more than 8 '$' names (a cycle?)",
                key, ref);
            return NULL;
        }
        v = hit;
    }
    return v;
}

const cJSON *net_attr(Cur *c, const char *key, bool required, bool *missing) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->js, key);
    *missing = !v;
    if (!v) {
        if (required) net_err(c, "attribute '%s' is required", key);
        return NULL;
    }
    return resolve(c, v, key);
}

/* An integer attribute in [lo, hi]; dflt when absent and not required. */
bool net_get_int(Cur *c, const char *key, bool required, int64_t dflt, int64_t lo, int64_t hi,
                 int64_t *out) {
    bool missing;
    const cJSON *v = net_attr(c, key, required, &missing);
    if (missing) {
        *out = dflt;
        return !required;
    }
    if (!v) return false;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return net_err(c, "attribute '%s' must be an integer", key);
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return net_err(c, "attribute '%s' = %g is out of range [%lld, %lld]", key, v->valuedouble,
                   (long long)lo, (long long)hi);
    *out = (int64_t)v->valuedouble;
    return true;
}

/* An integer or a pair [a, b] (kernel, stride, padding). */
bool net_get_pair(Cur *c, const char *key, bool required, int64_t dflt, int64_t lo,
                  int64_t out[2]) {
    bool missing;
    const cJSON *v = net_attr(c, key, required, &missing);
    if (!missing && v && cJSON_IsArray(v)) {
        const cJSON *a = v->child, *b = a ? a->next : NULL;
        if (!a || !b || b->next || !cJSON_IsNumber(a) || !cJSON_IsNumber(b) ||
            a->valuedouble != floor(a->valuedouble) || b->valuedouble != floor(b->valuedouble) ||
            a->valuedouble < (double)lo || b->valuedouble < (double)lo || a->valuedouble > 1e6 ||
            b->valuedouble > 1e6)
            return net_err(c, "attribute '%s' must be an integer >= %lld or a pair of them", key,
                       (long long)lo);
        out[0] = (int64_t)a->valuedouble;
        out[1] = (int64_t)b->valuedouble;
        return true;
    }
    if (!net_get_int(c, key, required, dflt, lo, 1000000, &out[0])) return false;
    out[1] = out[0];
    return true;
}

bool net_get_num(Cur *c, const char *key, double dflt, double lo, double hi, double *out) {
    bool missing;
    const cJSON *v = net_attr(c, key, false, &missing);
    *out = dflt;
    if (missing) return true;
    if (!v) return false;
    if (!cJSON_IsNumber(v)) return net_err(c, "attribute '%s' must be a number", key);
    if (!(v->valuedouble >= lo && v->valuedouble <= hi))
        return net_err(c, "attribute '%s' = %g is out of range [%g, %g]", key, v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return true;
}

bool net_get_bool(Cur *c, const char *key, bool dflt, bool *out) {
    bool missing;
    const cJSON *v = net_attr(c, key, false, &missing);
    *out = dflt;
    if (missing) return true;
    if (!v) return false;
    if (!cJSON_IsBool(v)) return net_err(c, "attribute '%s' must be true or false", key);
    *out = cJSON_IsTrue(v);
    return true;
}

bool net_get_str(Cur *c, const char *key, const char *dflt, const char **out) {
    bool missing;
    const cJSON *v = net_attr(c, key, false, &missing);
    *out = dflt;
    if (missing) return true;
    if (!v) return false;
    if (!cJSON_IsString(v)) return net_err(c, "attribute '%s' must be a string", key);
    *out = v->valuestring;
    return true;
}

/* ---- parameters ---- */

/* Init spec by name; fan_in is the weight's inputs per output. */
bool net_init_spec(Cur *c, const char *key, const char *dflt, int64_t fan_in, InitSpec *out) {
    const char *name;
    if (!net_get_str(c, key, dflt, &name)) return false;
    double fi = (double)(fan_in > 0 ? fan_in : 1);
    if (strcmp(name, "kaiming_normal") == 0) *out = (InitSpec){INIT_NORMAL, sqrt(2.0 / fi)};
    else if (strcmp(name, "kaiming_uniform") == 0) *out = (InitSpec){INIT_UNIFORM, sqrt(6.0 / fi)};
    else if (strcmp(name, "default") == 0) *out = (InitSpec){INIT_UNIFORM, 1.0 / sqrt(fi)};
    else if (strcmp(name, "zeros") == 0) *out = (InitSpec){INIT_ZEROS, 0};
    else if (strcmp(name, "ones") == 0) *out = (InitSpec){INIT_ONES, 0};
    else
        return net_err(c, "attribute '%s': unknown init '%s' (known: kaiming_normal, "
                      "kaiming_uniform, default, zeros, ones)", key, name);
    return true;
}

/* Creates (or, on a later instantiation, reuses) parameter prefix+id+suffix. */
int net_param(Cur *c, const char *suffix, Type t, InitSpec init, bool trainable) {
    Builder *b = c->net->env->b;
    const char *name = arena_printf(net_arena(c->net), "%s%s.%s", c->net->prefix, c->id, suffix);
    if (!frontend_size_ok(&t)) {
        char a[128];
        net_err(c, "parameter '%s' would be %s: more than 2^40 elements", name,
            type_str(&t, a, sizeof a));
        return -1;
    }
    /* Two nodes of one network must not make the same parameter (ids with
     * dots can collide with block instances: "a.b" and b in instance a). */
    if (strmap_get(c->net->env->made, name) >= 0) {
        net_err(c, "parameter '%s' is also made by another node (ids with dots collide with "
               "block instances)", name);
        return -1;
    }
    strmap_put(c->net->env->made, name, 1);
    int p = module_find_param(b->m, name);
    if (p >= 0 && !type_equal(&b->m->params[p].type, &t)) {
        char a[128], e[128];
        net_err(c, "parameter '%s' is %s here but %s elsewhere", name, type_str(&t, a, sizeof a),
            type_str(&b->m->params[p].type, e, sizeof e));
        return -1;
    }
    if (p < 0) module_add_param(b->m, name, t, init, trainable);
    return b_param(b, name);
}

/* ---- layers ---- */

/* Value names: "<call>:<prefix><id>[.<part>]", where <call> names the
 * objective node that called the network (none for predict), so a dump
 * tells the network's instances apart: z_adv:conv1, ig_nat:conv1. */
const char *net_vname(Cur *c, const char *part) {
    const char *call = c->net->env->value_prefix;
    return arena_printf(net_arena(c->net), "%s%s%s%s%s%s", call ? call : "", call ? ":" : "",
                        c->net->prefix, c->id, part ? "." : "", part ? part : "");
}

bool net_need_rank(Cur *c, int x, int rank, const char *what) {
    const Type t_v = *b_type(c->net->env->b, x), *t = &t_v;
    char s[128];
    if (t->rank == rank) return true;
    return net_err(c, "expects %s, got %s", what, type_str(t, s, sizeof s));
}

/* Adds a per-channel bias along axis 1. */
int net_add_bias(Cur *c, int y, int64_t channels, const char *init_key, int64_t fan_in) {
    Builder *b = c->net->env->b;
    InitSpec init;
    if (!net_init_spec(c, init_key, "default", fan_in, &init)) return -1;
    int bias = net_param(c, "bias", type_make(b_type(b, y)->dtype, 1, &channels), init, true);
    int bb = b_bcast_axis(b, net_vname(c, "bias.b"), bias, b_type(b, y), 1);
    return b_binary(b, OP_ADD, net_vname(c, NULL), y, bb);
}

static int conv2d(Cur *c, int x) {
    static const char *const keys[] = {"id", "op", "inputs", "out_channels", "kernel", "stride",
                                       "padding", "bias", "init", "bias_init", NULL};
    Builder *b = c->net->env->b;
    int64_t oc, k[2], s[2], p[2];
    bool bias;
    InitSpec init;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !net_need_rank(c, x, 4, "an NCHW input [N,C,H,W]") ||
        !net_get_int(c, "out_channels", true, 0, 1, 1 << 20, &oc) ||
        !net_get_pair(c, "kernel", true, 1, 1, k) || !net_get_pair(c, "stride", false, 1, 1, s) ||
        !net_get_pair(c, "padding", false, 0, 0, p) || !net_get_bool(c, "bias", true, &bias))
        return -1;
    const Type xt_v = *b_type(b, x), *xt = &xt_v;
    int64_t fan_in = xt->dim[1] * k[0] * k[1];
    if (!net_init_spec(c, "init", "default", fan_in, &init)) return -1;
    int64_t wd[4] = {oc, xt->dim[1], k[0], k[1]};
    int w = net_param(c, "weight", type_make(xt->dtype, 4, wd), init, true);
    if (w < 0) return -1;
    Attr a[2] = {attr_ints("padding", p, 2), attr_ints("stride", s, 2)};
    int ins[2] = {x, w};
    int y = b_node(b, OP_CONV2D, net_vname(c, bias ? "conv" : NULL), ins, 2, a, 2);
    return bias && y >= 0 ? net_add_bias(c, y, oc, "bias_init", fan_in) : y;
}

static int linear(Cur *c, int x);

/* linear with last_axis on [N, ..., K]: rows flattened, linear, shape
 * restored (nn.Linear on a batch of sequences). */
static int linear_last_axis(Cur *c, int x, bool *done) {
    static const char *const keys[] = {"id", "op", "inputs", "out_features", "bias", "init",
                                       "bias_init", "last_axis", NULL};
    Builder *b = c->net->env->b;
    bool last;
    *done = false;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !net_get_bool(c, "last_axis", false, &last))
        return -1;
    const Type t = *b_type(b, x);
    if (!last || t.rank <= 2) return x;
    int64_t of, flat[2] = {type_numel(&t) / t.dim[t.rank - 1], t.dim[t.rank - 1]}, out[IR_MAX_RANK];
    if (!net_get_int(c, "out_features", true, 0, 1, 1 << 24, &of)) return -1;
    int rows = b_reshape(b, net_vname(c, "rows"), x, 2, flat);
    if (rows < 0) return -1;
    int y = linear(c, rows);
    memcpy(out, t.dim, sizeof(int64_t) * (size_t)t.rank);
    out[t.rank - 1] = of;
    *done = true;
    return y < 0 ? -1 : b_reshape(b, net_vname(c, "last"), y, t.rank, out);
}

static int linear(Cur *c, int x) {
    static const char *const keys[] = {"id", "op", "inputs", "out_features", "bias", "init",
                                       "bias_init", "last_axis", NULL};
    Builder *b = c->net->env->b;
    int64_t of;
    bool bias;
    InitSpec init, binit;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !net_need_rank(c, x, 2, "a flat input [N,K] (add a flatten node, or set last_axis)") ||
        !net_get_int(c, "out_features", true, 0, 1, 1 << 24, &of) || !net_get_bool(c, "bias", true, &bias))
        return -1;
    const Type xt_v = *b_type(b, x), *xt = &xt_v;
    int64_t fan_in = xt->dim[1], wd[2] = {of, fan_in};
    if (!net_init_spec(c, "init", "default", fan_in, &init) ||
        !net_init_spec(c, "bias_init", "default", fan_in, &binit))
        return -1;
    int ins[3] = {x, net_param(c, "weight", type_make(xt->dtype, 2, wd), init, true), -1};
    if (bias) ins[2] = net_param(c, "bias", type_make(xt->dtype, 1, &of), binit, true);
    if (ins[1] < 0 || (bias && ins[2] < 0)) return -1;
    return b_node(b, OP_LINEAR, net_vname(c, NULL), ins, bias ? 3 : 2, NULL, 0);
}

/* PyTorch's running-statistics update in training mode: stat <- (1 - m)
 * stat + m batch_stat, the variance unbiased (divided by count - 1). A
 * second training-mode call in the same step starts from the first's
 * result, as sequential PyTorch calls would. */
static bool running_update(Cur *c, int x, int param_v, const char *which, double momentum) {
    NetEnv *env = c->net->env;
    Builder *b = env->b;
    StatUpdates *u = env->stat_updates;
    const char *pname = arena_printf(net_arena(c->net), "%s%s.%s", c->net->prefix, c->id, which);
    int cur = param_v;
    for (int i = 0; i < u->n; i++)
        if (strcmp(u->names[i], pname) == 0) cur = u->values[i];
    const Type xt = *b_type(b, x);
    Type ct = type_make(xt.dtype, 1, &xt.dim[1]);
    int64_t axes[IR_MAX_RANK], k = 0;
    for (int i = 0; i < xt.rank; i++)
        if (i != 1) axes[k++] = i;
    const int ranks = env->bn_ranks > 1 ? env->bn_ranks : 1; /* train.sync_bn: the global batch's */
    double count = (double)type_numel(&xt) / (double)xt.dim[1] * ranks;
    const char *base = arena_printf(net_arena(c->net), "%s.new", pname);
    int stat = b_reduce(b, OP_REDUCE_SUM, arena_printf(net_arena(c->net), "%s.sum", base), x, axes, (int)k, false);
    if (ranks > 1) stat = b_unary(b, OP_RANK_SUM, arena_printf(net_arena(c->net), "%s.sum.ranks", base), stat);
    int mean = b_binary(b, OP_MUL, arena_printf(net_arena(c->net), "%s.mean", base), stat,
                        b_broadcast(b, NULL, b_const(b, NULL, 1.0 / count, type_scalar(xt.dtype)), &ct));
    if (strcmp(which, "running_var") == 0) {
        int mb = b_bcast_axis(b, NULL, mean, &xt, 1);
        int xc = b_binary(b, OP_SUB, NULL, x, mb);
        int ss = b_reduce(b, OP_REDUCE_SUM, NULL, b_binary(b, OP_MUL, NULL, xc, xc), axes, (int)k, false);
        if (ranks > 1) ss = b_unary(b, OP_RANK_SUM, NULL, ss);
        stat = b_binary(b, OP_MUL, arena_printf(net_arena(c->net), "%s.var", base), ss,
                        b_broadcast(b, NULL, b_const(b, NULL, 1.0 / (count > 1 ? count - 1 : 1), type_scalar(xt.dtype)), &ct));
    } else {
        stat = mean;
    }
    int keep = b_binary(b, OP_MUL, NULL, cur, b_broadcast(b, NULL, b_const(b, NULL, 1.0 - momentum, type_scalar(xt.dtype)), &ct));
    int add = b_binary(b, OP_MUL, NULL, stat, b_broadcast(b, NULL, b_const(b, NULL, momentum, type_scalar(xt.dtype)), &ct));
    int nv = b_binary(b, OP_ADD, base, keep, add);
    if (nv < 0) return false;
    if (u->n == u->cap) {
        u->cap = u->cap ? 2 * u->cap : 16;
        u->names = realloc(u->names, sizeof *u->names * (size_t)u->cap);
        u->values = realloc(u->values, sizeof *u->values * (size_t)u->cap);
    }
    for (int i = 0; i < u->n; i++)
        if (strcmp(u->names[i], pname) == 0) return (u->values[i] = nv), true;
    u->names[u->n] = pname;
    u->values[u->n++] = nv;
    return true;
}

static int batch_norm(Cur *c, int x) {
    static const char *const keys[] = {"id", "op", "inputs", "eps", "momentum", NULL};
    Builder *b = c->net->env->b;
    double eps, momentum;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !net_get_num(c, "eps", 1e-5, 0, 1, &eps) || !net_get_num(c, "momentum", 0.1, 0, 1, &momentum))
        return -1;
    const Type xt_v = *b_type(b, x), *xt = &xt_v;
    if (xt->rank < 2) return net_err(c, "expects an input [N,C,...]"), -1;
    Type ct = type_make(xt->dtype, 1, &xt->dim[1]);
    int ins[5] = {x, net_param(c, "weight", ct, (InitSpec){INIT_ONES, 0}, true),
                  net_param(c, "bias", ct, (InitSpec){INIT_ZEROS, 0}, true),
                  net_param(c, "running_mean", ct, (InitSpec){INIT_ZEROS, 0}, false),
                  net_param(c, "running_var", ct, (InitSpec){INIT_ONES, 0}, false)};
    for (int i = 1; i < 5; i++)
        if (ins[i] < 0) return -1;
    NetEnv *env = c->net->env;
    int groups = env->training && env->bn_groups > 1 ? env->bn_groups : 1;
    int ranks = env->training && groups == 1 && env->bn_ranks > 1 ? env->bn_ranks : 1;
    Attr a[3] = {attr_float("eps", eps), attr_int("training", env->training)};
    int na = 2;
    if (groups > 1) a[na++] = attr_int("groups", groups);
    if (ranks > 1) a[na++] = attr_int("ranks", ranks);
    if (env->training && env->stat_updates && groups == 1 &&
        (!running_update(c, x, ins[3], "running_mean", momentum) ||
         !running_update(c, x, ins[4], "running_var", momentum)))
        return -1;
    return b_node(b, OP_BATCH_NORM, net_vname(c, NULL), ins, 5, a, na);
}

/* maxpool2d and avgpool2d; avgpool2d also takes count_include_pad (PyTorch's,
 * default true). Its node carries padding and count_include_pad only when
 * they change the result (padding nonzero; count_include_pad false). */
static int pool(Cur *c, int x, OpKind op) {
    static const char *const keys[] = {"id", "op", "inputs", "kernel", "stride", "padding", NULL};
    static const char *const avg_keys[] = {"id",      "op",      "inputs",           "kernel",
                                           "stride",  "padding", "count_include_pad", NULL};
    int64_t k[2], s[2], p[2];
    bool include_pad = true;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js,
                    op == OP_AVGPOOL2D ? avg_keys : keys) ||
        !net_need_rank(c, x, 4, "an NCHW input [N,C,H,W]") || !net_get_pair(c, "kernel", true, 1, 1, k) ||
        !net_get_pair(c, "stride", false, k[0], 1, s) || !net_get_pair(c, "padding", false, 0, 0, p) ||
        (op == OP_AVGPOOL2D && !net_get_bool(c, "count_include_pad", true, &include_pad)))
        return -1;
    if (2 * p[0] > k[0] || 2 * p[1] > k[1])
        return net_err(c, "padding [%lld,%lld] must be at most half the kernel [%lld,%lld]",
                   (long long)p[0], (long long)p[1], (long long)k[0], (long long)k[1]),
               -1;
    if (!cJSON_GetObjectItemCaseSensitive(c->js, "stride")) s[0] = k[0], s[1] = k[1];
    Attr a[4] = {attr_ints("kernel", k, 2), attr_ints("stride", s, 2)};
    int na = 2;
    if (op == OP_MAXPOOL2D || p[0] || p[1]) a[na++] = attr_ints("padding", p, 2);
    if (op == OP_AVGPOOL2D && (p[0] || p[1]) && !include_pad)
        a[na++] = attr_int("count_include_pad", 0);
    return b_node(c->net->env->b, op, net_vname(c, NULL), &x, 1, a, na);
}

static int flatten(Cur *c, int x) {
    static const char *const keys[] = {"id", "op", "inputs", NULL};
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys)) return -1;
    const Type t_v = *b_type(c->net->env->b, x), *t = &t_v;
    int64_t dims[2] = {t->rank ? t->dim[0] : 1, t->rank ? type_numel(t) / t->dim[0] : 1};
    return b_reshape(c->net->env->b, net_vname(c, NULL), x, 2, dims);
}

static int dropout(Cur *c, int x) {
    static const char *const keys[] = {"id", "op", "inputs", "p", NULL};
    double p;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys) ||
        !net_get_num(c, "p", 0.5, 0, 0.99, &p))
        return -1;
    NetEnv *env = c->net->env;
    if (!env->training || p == 0) return x; /* identity in evaluation */
    if (env->rng_key < 0) return net_err(c, "dropout in training needs a random key"), -1;
    uint32_t stream = 2166136261u; /* FNV-1a of the full name: stable per node */
    for (const char *s = net_vname(c, NULL); *s; s++) stream = (stream ^ (uint8_t)*s) * 16777619u;
    Attr a[3] = {attr_float("p", p), attr_int("stream", stream), attr_int("training", 1)};
    int ins[2] = {x, env->rng_key};
    return b_node(env->b, OP_DROPOUT, net_vname(c, NULL), ins, 2, a, 3);
}

static void tap_relu(ReluTaps *t, int v) {
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->values = realloc(t->values, sizeof(int) * (size_t)t->cap);
        if (!t->values) abort();
    }
    t->values[t->n++] = v;
}

/* ReLU, or softplus (beta 1) in the smooth surrogate: its second
 * derivative is non-zero, which the attribution attack's double backprop
 * needs. */
static int relu(Cur *c, int x) {
    NetEnv *env = c->net->env;
    if (env->relu_taps) tap_relu(env->relu_taps, x);
    if (!env->smooth_relu) return b_node(env->b, OP_RELU, net_vname(c, NULL), &x, 1, NULL, 0);
    Attr a = attr_float("beta", 1.0);
    return b_node(env->b, OP_SOFTPLUS, net_vname(c, NULL), &x, 1, &a, 1);
}

/* leaky_relu in the smooth surrogate: alpha x + (1 - alpha) softplus(x),
 * which leaky_relu is the beta -> infinity limit of; like ReLU's softplus,
 * it gives the attribution attack a non-zero second derivative. */
static int smooth_leaky(Cur *c, int x, double alpha) {
    Builder *b = c->net->env->b;
    const Type t = *b_type(b, x);
    Attr beta = attr_float("beta", 1.0);
    int sp = b_node(b, OP_SOFTPLUS, net_vname(c, "softplus"), &x, 1, &beta, 1);
    int ka = b_broadcast(b, net_vname(c, "alpha"), b_const(b, net_vname(c, "alpha.s"), alpha, type_scalar(t.dtype)), &t);
    int kb = b_broadcast(b, net_vname(c, "rest"), b_const(b, net_vname(c, "rest.s"), 1 - alpha, type_scalar(t.dtype)), &t);
    return b_binary(b, OP_ADD, net_vname(c, NULL), b_binary(b, OP_MUL, net_vname(c, "lin"), ka, x),
                    b_binary(b, OP_MUL, net_vname(c, "soft"), kb, sp));
}

/* The activations with attributes: gelu {approximate}, leaky_relu and elu
 * {alpha}, as PyTorch's GELU, LeakyReLU (negative_slope) and ELU. */
static int activation(Cur *c, OpKind op, int x) {
    Builder *b = c->net->env->b;
    if (op == OP_GELU) {
        const char *form;
        if (!net_get_str(c, "approximate", "none", &form)) return -1;
        if (strcmp(form, "none") && strcmp(form, "tanh"))
            return net_err(c, "'approximate' must be \"none\" or \"tanh\", got '%s'", form), -1;
        Attr a = attr_str("approximate", form);
        return b_node(b, op, net_vname(c, NULL), &x, 1, &a, 1);
    }
    double alpha;
    if (!net_get_num(c, "alpha", op == OP_ELU ? 1.0 : 0.01, -1e6, 1e6, &alpha)) return -1;
    if (op == OP_LEAKY_RELU && c->net->env->smooth_relu) return smooth_leaky(c, x, alpha);
    Attr a = attr_float("alpha", alpha);
    return b_node(b, op, net_vname(c, NULL), &x, 1, &a, 1);
}

static int elementwise(Cur *c, OpKind op, const int *ins, int nin) {
    static const char *const keys[] = {"id", "op", "inputs", NULL};
    static const char *const skeys[] = {"id", "op", "inputs", "beta", NULL};
    static const char *const gkeys[] = {"id", "op", "inputs", "approximate", NULL};
    static const char *const akeys[] = {"id", "op", "inputs", "alpha", NULL};
    Builder *b = c->net->env->b;
    const char *const *allowed = op == OP_SOFTPLUS ? skeys : op == OP_GELU ? gkeys
                                 : op == OP_LEAKY_RELU || op == OP_ELU ? akeys : keys;
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, allowed)) return -1;
    if (nin != op_info(op)->min_inputs)
        return net_err(c, "%s takes %d input(s), %d given", op_name(op), op_info(op)->min_inputs, nin),
               -1;
    if (op == OP_SOFTPLUS) {
        double beta;
        if (!net_get_num(c, "beta", 1.0, 1e-6, 1e6, &beta)) return -1;
        Attr a = attr_float("beta", beta);
        return b_node(b, op, net_vname(c, NULL), ins, 1, &a, 1);
    }
    if (op == OP_RELU) return relu(c, ins[0]);
    if (op == OP_GELU || op == OP_LEAKY_RELU || op == OP_ELU) return activation(c, op, ins[0]);
    return b_node(b, op, net_vname(c, NULL), ins, nin, NULL, 0);
}

/* ---- layers for imported networks (docs/onnx.md): arithmetic with a
 * constant operand, div, reshape, transpose, concat, pad, clip, softmax,
 * reduce_mean. Each maps onto existing IR ops. ---- */

static int block_instance(Cur *c, const int *ins, int nin);

static int lower_layer(Cur *c, const char *op, const int *ins, int nin) {
    if (strcmp(op, "identity") == 0) {
        static const char *const keys[] = {"id", "op", "inputs", NULL};
        if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys)) return -1;
        return nin == 1 ? ins[0] : (net_err(c, "identity takes one input, %d given", nin), -1);
    }
    int imp = net_tensor_layer(c, op, ins, nin);
    if (imp != -2) return imp;
    if (nin != 1 && strcmp(op, "add") && strcmp(op, "sub") && strcmp(op, "mul") &&
        strcmp(op, "div"))
        return net_err(c, "'%s' takes one input, %d given", op, nin), -1;
    if (strcmp(op, "conv2d") == 0) return conv2d(c, ins[0]);
    if (strcmp(op, "linear") == 0) {
        bool done;
        int r = linear_last_axis(c, ins[0], &done);
        return done || r < 0 ? r : linear(c, r);
    }
    if (strcmp(op, "batch_norm") == 0) return batch_norm(c, ins[0]);
    if (strcmp(op, "maxpool2d") == 0) return pool(c, ins[0], OP_MAXPOOL2D);
    if (strcmp(op, "avgpool2d") == 0) return pool(c, ins[0], OP_AVGPOOL2D);
    if (strcmp(op, "flatten") == 0) return flatten(c, ins[0]);
    if (strcmp(op, "dropout") == 0) return dropout(c, ins[0]);
    static const struct { const char *name; OpKind op; } ew[] = {
        {"relu", OP_RELU}, {"softplus", OP_SOFTPLUS}, {"sigmoid", OP_SIGMOID},
        {"tanh", OP_TANH}, {"add", OP_ADD},           {"sub", OP_SUB},
        {"mul", OP_MUL},   {"neg", OP_NEG},           {"abs", OP_ABS},
        {"gelu", OP_GELU}, {"silu", OP_SILU},         {"leaky_relu", OP_LEAKY_RELU},
        {"elu", OP_ELU},   {"div", OP_DIV}};
    for (size_t i = 0; i < sizeof ew / sizeof ew[0]; i++)
        if (strcmp(op, ew[i].name) == 0) return elementwise(c, ew[i].op, ins, nin);
    return -2; /* not a layer */
}

static const char *const LAYER_OPS[] = {"conv2d", "linear", "batch_norm", "maxpool2d",
                                        "avgpool2d", "flatten", "dropout", "relu", "softplus",
                                        "sigmoid", "tanh", "add", "sub", "mul", "neg", "abs",
                                        "gelu", "silu", "leaky_relu", "elu", "identity", "div",
                                        "reshape", "transpose", "concat", "pad", "clip",
                                        "softmax", "reduce_mean", "conv_transpose2d", NULL};

/* The closest layer op name, for "did you mean". */
static const char *closest_layer(const char *op) {
    const char *best = LAYER_OPS[0];
    size_t bestscore = 0;
    for (const char *const *l = LAYER_OPS; *l; l++) {
        size_t score = 0, la = strlen(*l), lb = strlen(op);
        for (size_t i = 0; i < la && i < lb && (*l)[i] == op[i]; i++) score += 2;
        for (size_t i = 1; i <= la && i <= lb && (*l)[la - i] == op[lb - i]; i++) score++;
        if (score > bestscore) bestscore = score, best = *l;
    }
    return best;
}

/* ---- one node ---- */

/* Never inlined into emit(): emit recurses once per node listed before its
 * inputs (up to MAX_EMIT_DEPTH levels), and the layer builders' locals
 * would otherwise be in every level's frame (a stack overflow under ASan). */
__attribute__((noinline)) static int lower_node(Cur *c, const int *ins, int nin) {
    const cJSON *blk = cJSON_GetObjectItemCaseSensitive(c->js, "block");
    if (blk) return block_instance(c, ins, nin);
    bool missing;
    const cJSON *op = net_attr(c, "op", true, &missing);
    if (!op) return -1;
    if (!cJSON_IsString(op)) return net_err(c, "'op' must be a string"), -1;
    int v = lower_layer(c, op->valuestring, ins, nin);
    if (v == -2)
        return net_err(c, "unknown op '%s' (did you mean '%s'?)", op->valuestring,
                   closest_layer(op->valuestring)),
               -1;
    if (v < 0 && !diag_failed(net_diag(c->net))) net_err(c, "could not lower this node");
    if (v < 0 && diag_failed(net_diag(c->net)) && !strstr(net_diag(c->net)->msg, c->net->file))
        diag_prefix(net_diag(c->net), "%s: %s", c->net->file, c->jpath);
    return v;
}

/* ---- node lists: ids, references, topological order ---- */

typedef struct {
    Net *net;
    const cJSON *nodes;  /* array */
    int count;
    const cJSON **js;
    const char **id;
    int *state;          /* 0 new, 1 on the DFS stack, 2 done */
    StrMap *index;       /* id -> node index */
    const char *const *inputs; /* the list's input names */
    const int *input_vals;
    int ninputs;
} List;

static void node_path(List *l, int i, Cur *c) {
    c->net = l->net;
    c->js = l->js[i];
    c->id = l->id[i] ? l->id[i] : "?";
    const char *pre = l->net->prefix;
    int plen = *pre ? (int)strlen(pre) - 1 : 0; /* without the trailing dot */
    if (plen)
        snprintf(c->jpath, sizeof c->jpath, "%s.nodes[%d] (id '%s' in instance '%.*s')",
                 l->net->where, i, c->id, plen, pre);
    else
        snprintf(c->jpath, sizeof c->jpath, "%s.nodes[%d] (id '%s')", l->net->where, i, c->id);
}

static int find_id(List *l, const char *id) { return strmap_get(l->index, id); }

static int emit(List *l, int i);

/* Resolves one input reference: a list input, or another node (emitted
 * first, depth-first; meeting a node on the stack is a cycle). */
static int input_ref(List *l, Cur *c, const cJSON *ref) {
    if (!cJSON_IsString(ref)) return net_err(c, "'inputs' must list node ids as strings"), -1;
    for (int k = 0; k < l->ninputs; k++)
        if (strcmp(l->inputs[k], ref->valuestring) == 0) return l->input_vals[k];
    int j = find_id(l, ref->valuestring);
    if (j < 0) {
        const char *hint = l->ninputs ? l->inputs[0] : "";
        return net_err(c, "input '%s' names no node of %s (nor its input '%s')", ref->valuestring,
                   l->net->where, hint),
               -1;
    }
    if (l->state[j] == 1)
        return net_err(c, "cycle: node '%s' depends on itself through '%s'", c->id, ref->valuestring),
               -1;
    if (l->net->env->depth >= MAX_EMIT_DEPTH)
        return net_err(c, "more than %d nodes are listed before the nodes they read: list nodes "
                      "after their inputs", MAX_EMIT_DEPTH),
               -1;
    l->net->env->depth++;
    int v = emit(l, j);
    l->net->env->depth--;
    return v;
}

static int emit(List *l, int i) {
    int done = strmap_get(l->net->ids, l->id[i]);
    if (done >= 0) return done;
    Cur c;
    node_path(l, i, &c);
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(l->js[i], "inputs");
    if (!cJSON_IsArray(ins) || cJSON_GetArraySize(ins) < 1 || cJSON_GetArraySize(ins) > 16)
        return net_err(&c, "'inputs' must be a list of 1 to 16 node ids"), -1;
    l->state[i] = 1;
    int vals[16], n = 0;
    for (const cJSON *r = ins->child; r; r = r->next) {
        vals[n] = input_ref(l, &c, r);
        if (vals[n++] < 0) return -1;
    }
    int v = lower_node(&c, vals, n);
    l->state[i] = 2;
    if (v >= 0 && !frontend_size_ok(b_type(l->net->env->b, v))) {
        char a[128];
        return net_err(&c, "the result would be %s: more than 2^40 elements",
                   type_str(b_type(l->net->env->b, v), a, sizeof a)),
               -1;
    }
    if (v >= 0) {
        strmap_put(l->net->ids, l->id[i], v);
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(l->js[i], "block");
        if (!op) op = resolve(&c, cJSON_GetObjectItemCaseSensitive(l->js[i], "op"), "op");
        if (l->net->env->notes)
            module_note(l->net->env->b->m, net_vname(&c, NULL), cJSON_IsString(op) ? op->valuestring : "?", v);
    }
    return v;
}

static bool collect_ids(List *l) {
    int i = 0;
    for (const cJSON *it = l->nodes->child; it; it = it->next, i++) {
        Cur c = {.net = l->net};
        snprintf(c.jpath, sizeof c.jpath, "%s.nodes[%d]", l->net->where, i);
        l->js[i] = it;
        if (!cJSON_IsObject(it)) return net_err(&c, "a node must be an object");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsString(id) || !id->valuestring[0])
            return net_err(&c, "every node needs a non-empty string 'id'");
        l->id[i] = arena_strdup(net_arena(l->net), id->valuestring);
        int j = find_id(l, l->id[i]);
        if (j >= 0)
            return net_err(&c, "duplicate id '%s' (first defined at nodes[%d])", l->id[i], j);
        strmap_put(l->index, l->id[i], i);
        /* References resolve to list inputs first: a node named like one
         * could never be referenced. */
        for (int k = 0; k < l->ninputs; k++)
            if (strcmp(l->inputs[k], l->id[i]) == 0)
                return net_err(&c, "id '%s' is already the name of an input of %s", l->id[i],
                           l->net->where);
    }
    return true;
}

/* Lowers a node list and returns the value of its output node. */
static int lower_list(Net *net, const cJSON *def, const char *const *inputs, const int *vals,
                      int nin) {
    Cur c = {.net = net};
    snprintf(c.jpath, sizeof c.jpath, "%s", net->where);
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(def, "nodes");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(def, "output");
    if (!cJSON_IsArray(nodes) || !nodes->child) return net_err(&c, "'nodes' must be a non-empty list"), -1;
    if (!cJSON_IsString(out)) return net_err(&c, "'output' must name a node"), -1;
    List l = {.net = net, .nodes = nodes, .count = cJSON_GetArraySize(nodes), .inputs = inputs,
              .input_vals = vals, .ninputs = nin};
    l.js = calloc((size_t)l.count, sizeof *l.js);
    l.id = calloc((size_t)l.count, sizeof *l.id);
    l.state = calloc((size_t)l.count, sizeof *l.state);
    l.index = strmap_new();
    int v = -1;
    if (collect_ids(&l)) {
        int o = find_id(&l, out->valuestring);
        if (o < 0) net_err(&c, "'output' names no node: '%s'", out->valuestring);
        /* Every node is lowered, used or not, so errors are never hidden. */
        for (int i = 0; o >= 0 && i < l.count && !diag_failed(net_diag(net)); i++) emit(&l, i);
        if (o >= 0 && !diag_failed(net_diag(net))) v = strmap_get(net->ids, l.id[o]);
    }
    free(l.js);
    free(l.id);
    free(l.state);
    strmap_free(l.index);
    return v;
}

/* ---- blocks ---- */

static const cJSON *find_def(Net *n, const char *section, const char *name) {
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(n->env->doc, section);
    return sec ? cJSON_GetObjectItemCaseSensitive(sec, name) : NULL;
}

/* Arguments of one instance: the block's defaults overridden by the
 * instance's args, each resolved in the caller's scope. */
static cJSON *instance_args(Cur *c, const cJSON *block, const char *bname) {
    static const char *const keys[] = {"id", "block", "inputs", "args", NULL};
    if (!check_keys(net_diag(c->net), c->net->file, c->jpath, c->js, keys)) return NULL;
    const cJSON *defaults = cJSON_GetObjectItemCaseSensitive(block, "args");
    const cJSON *given = cJSON_GetObjectItemCaseSensitive(c->js, "args");
    if (given && !cJSON_IsObject(given)) return net_err(c, "'args' must be an object"), NULL;
    cJSON *args = defaults ? cJSON_Duplicate(defaults, true) : cJSON_CreateObject();
    for (const cJSON *g = given ? given->child : NULL; g; g = g->next) {
        const cJSON *v = resolve(c, g, g->string);
        if (!v || !cJSON_GetObjectItemCaseSensitive(args, g->string)) {
            if (v) net_err(c, "block '%s' has no argument '%s'", bname, g->string);
            cJSON_Delete(args);
            return NULL;
        }
        cJSON_ReplaceItemInObjectCaseSensitive(args, g->string, cJSON_Duplicate(v, true));
    }
    for (const cJSON *a = args->child; a; a = a->next)
        if (cJSON_IsNull(a)) {
            net_err(c, "block '%s' needs argument '%s'", bname, a->string);
            cJSON_Delete(args);
            return NULL;
        }
    return args;
}

static int block_instance(Cur *c, const int *ins, int nin) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(c->js, "block");
    if (!cJSON_IsString(name)) return net_err(c, "'block' must name a block"), -1;
    const cJSON *block = find_def(c->net, "blocks", name->valuestring);
    if (!block) return net_err(c, "no block named '%s'", name->valuestring), -1;
    {
        static const char *const bkeys[] = {"args", "inputs", "nodes", "output", NULL};
        const char *bfile = doc_file_of(block, c->net->file);
        const char *bwhere = arena_printf(net_arena(c->net), "blocks.%s", name->valuestring);
        const cJSON *bargs = cJSON_GetObjectItemCaseSensitive(block, "args");
        const cJSON *binl = cJSON_GetObjectItemCaseSensitive(block, "inputs");
        if (!check_keys(net_diag(c->net), bfile, bwhere, block, bkeys)) return -1;
        if (bargs && !cJSON_IsObject(bargs))
            return ferr(net_diag(c->net), bfile, bwhere, "'args' must be an object"), -1;
        if (!cJSON_IsArray(binl) || cJSON_GetArraySize(binl) < 1 || cJSON_GetArraySize(binl) > 16)
            return ferr(net_diag(c->net), bfile, bwhere, "'inputs' must list 1 to 16 input names"),
                   -1;
        for (const cJSON *it = binl->child; it; it = it->next)
            if (!cJSON_IsString(it) || !it->valuestring[0])
                return ferr(net_diag(c->net), bfile, bwhere, "'inputs' must be non-empty strings"),
                       -1;
    }
    if (c->net->depth >= MAX_BLOCK_DEPTH)
        return net_err(c, "blocks nest deeper than %d (a block instantiates itself?)", MAX_BLOCK_DEPTH), -1;
    const cJSON *inl = cJSON_GetObjectItemCaseSensitive(block, "inputs");
    const char *names[16];
    int k = 0;
    for (const cJSON *it = cJSON_IsArray(inl) ? inl->child : NULL; it && k < 16; it = it->next)
        if (cJSON_IsString(it)) names[k++] = it->valuestring;
    if (k != nin)
        return net_err(c, "block '%s' takes %d input(s), %d given", name->valuestring, k, nin), -1;
    cJSON *args = instance_args(c, block, name->valuestring);
    if (!args) return -1;
    Net sub = {.env = c->net->env, .file = doc_file_of(block, c->net->file),
               .where = arena_printf(net_arena(c->net), "blocks.%s", name->valuestring),
               .prefix = arena_printf(net_arena(c->net), "%s%s.", c->net->prefix, c->id),
               .args = args, .ids = strmap_new(), .depth = c->net->depth + 1};
    int v = lower_list(&sub, block, names, ins, nin);
    strmap_free(sub.ids);
    cJSON_Delete(args);
    if (v < 0) diag_prefix(net_diag(c->net), "in %s: %s", c->net->file, c->jpath);
    return v;
}

int net_emit(NetEnv *env, const char *name, int x) {
    Net net = {.env = env, .prefix = "", .ids = strmap_new()};
    env->made = strmap_new();
    env->depth = 0;
    const cJSON *def = find_def(&net, "networks", name);
    net.file = def ? doc_file_of(def, env->root_file) : env->root_file;
    net.where = arena_printf(env->b->m->arena, "networks.%s", name);
    int v = -1;
    if (!def) {
        ferr(env->b->d, env->root_file, "network", "no network named '%s'", name);
    } else {
        static const char *const keys[] = {"input", "nodes", "output", NULL};
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(def, "input");
        const char *iname = cJSON_IsString(in) ? in->valuestring : "x";
        if (check_keys(env->b->d, net.file, net.where, def, keys))
            v = lower_list(&net, def, &iname, &x, 1);
    }
    strmap_free(net.ids);
    strmap_free(env->made);
    env->made = NULL;
    return v;
}
