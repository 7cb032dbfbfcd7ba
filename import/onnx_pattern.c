/* GELU's erf form, as PyTorch exports nn.GELU() below opset 20:
 *   x * 0.5 * (1 + erf(x / sqrt(2)))
 * in either order of the products (Div by sqrt 2 or Mul by 1/sqrt 2). The
 * nodes of the pattern are absorbed; its last node becomes a gelu. */
#include <math.h>
#include <string.h>

#include "import/onnx_internal.h"

typedef struct {
    Ox *o;
    StrMap *producer; /* value name -> node index */
} Pat;

static const Onnx__NodeProto *node_at(Pat *p, int i) { return i >= 0 ? p->o->g->node[i] : NULL; }

static bool is_op(const Onnx__NodeProto *n, const char *op, size_t nin) {
    return n && n->op_type && strcmp(n->op_type, op) == 0 && n->n_input == nin &&
           n->n_output >= 1 && n->output[0] && n->input[0] && (nin < 2 || n->input[1]);
}

/* The node reading value `name`, when exactly one node reads it once. */
static int sole_consumer(Pat *p, const char *name) {
    int found = -1;
    for (int j = 0; j < (int)p->o->g->n_node; j++) {
        const Onnx__NodeProto *m = p->o->g->node[j];
        for (size_t k = 0; k < m->n_input; k++)
            if (m->input[k] && strcmp(m->input[k], name) == 0) {
                if (found >= 0) return -1;
                found = j;
            }
    }
    for (size_t k = 0; k < p->o->g->n_output; k++)
        if (p->o->g->output[k] && p->o->g->output[k]->name &&
            strcmp(p->o->g->output[k]->name, name) == 0)
            return -1;
    return found;
}

/* The operand of binary node n that is not `name`; NULL when neither is. */
static const char *other(const Onnx__NodeProto *n, const char *name) {
    if (strcmp(n->input[0], name) == 0) return n->input[1];
    if (strcmp(n->input[1], name) == 0) return n->input[0];
    return NULL;
}

static bool is_const(Pat *p, const char *name, double want) {
    int v = name ? ox_find(p->o, name) : -1;
    return v >= 0 && ox_is_scalar(&p->o->vals[v]) && fabs(p->o->vals[v].data[0] - want) < 1e-6;
}

/* x / sqrt 2 or x * (1 / sqrt 2) feeding erf node e: x's name. */
static const char *erf_arg(Pat *p, const Onnx__NodeProto *e, int *d) {
    *d = strmap_get(p->producer, e->input[0]);
    const Onnx__NodeProto *dn = node_at(p, *d);
    if (is_op(dn, "Div", 2) && is_const(p, dn->input[1], sqrt(2.0))) return dn->input[0];
    if (is_op(dn, "Mul", 2)) {
        if (is_const(p, dn->input[1], sqrt(0.5))) return dn->input[0];
        if (is_const(p, dn->input[0], sqrt(0.5))) return dn->input[1];
    }
    return NULL;
}

static void match(Pat *p, int e) {
    const Onnx__NodeProto *en = p->o->g->node[e];
    if (!is_op(en, "Erf", 1)) return;
    int d, a = sole_consumer(p, en->output[0]);
    const char *x = erf_arg(p, en, &d);
    const Onnx__NodeProto *an = node_at(p, a);
    if (!x || sole_consumer(p, en->input[0]) != e || !is_op(an, "Add", 2) ||
        !is_const(p, other(an, en->output[0]), 1.0))
        return;
    int m1 = sole_consumer(p, an->output[0]), end, extra;
    const Onnx__NodeProto *mn = node_at(p, m1);
    if (!is_op(mn, "Mul", 2)) return;
    const char *f = other(mn, an->output[0]);
    if (f && strcmp(f, x) == 0) { /* (x * (1 + erf)) * 0.5 */
        end = sole_consumer(p, mn->output[0]);
        const Onnx__NodeProto *hn = node_at(p, end);
        if (!is_op(hn, "Mul", 2) || !is_const(p, other(hn, mn->output[0]), 0.5)) return;
        extra = m1;
    } else { /* (x * 0.5) * (1 + erf) */
        extra = f ? strmap_get(p->producer, f) : -1;
        const Onnx__NodeProto *hn = node_at(p, extra);
        if (!is_op(hn, "Mul", 2) || sole_consumer(p, f) != m1 || !other(hn, x) ||
            !is_const(p, other(hn, x), 0.5))
            return;
        end = m1;
    }
    int absorbed[4] = {d, e, a, extra};
    for (int i = 0; i < 4; i++) p->o->absorbed[absorbed[i]] = true;
    p->o->gelu_x[end] = x;
}

void ox_find_patterns(Ox *o) {
    Pat p = {.o = o, .producer = strmap_new()};
    for (int i = 0; i < (int)o->g->n_node; i++) {
        const Onnx__NodeProto *n = o->g->node[i];
        for (size_t k = 0; k < n->n_output; k++)
            if (n->output[k] && n->output[k][0]) strmap_put(p.producer, n->output[k], i);
    }
    for (int i = 0; i < (int)o->g->n_node; i++) match(&p, i);
    strmap_free(p.producer);
}
