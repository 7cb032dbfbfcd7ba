/* Simplify: algebraic identities that are exact in IEEE arithmetic, and
 * folding of splat constants.
 *
 * Identities (x any value, c a splat constant, i.e. `constant {value}`):
 *   x + c, c + x with c = -0.0 (or 0 for integers) -> x; x - c with c = +0.0
 *     (or 0) -> x. x + (+0.0) is kept: it turns -0.0 into +0.0, which recip,
 *     div and rsqrt can see. x * 0 and x - x are never folded (NaN, inf).
 *   x * 1, 1 * x, x / 1 -> x; neg(neg x) -> x; select(c, a, a) -> a
 *   stop_gradient(stop_gradient x) -> stop_gradient x, and stop_gradient
 *     x -> x once the module has no grad node left (after autodiff it is an
 *     identity)
 *   broadcast / reshape / cast to the operand's own type -> operand;
 *   reshape(reshape x) and broadcast(broadcast x) -> one node;
 *   transpose(transpose x) -> one transpose with the composed permutation
 *     (the identity permutation -> x)
 * Folding: a primitive elementwise, broadcast, reshape or transpose node
 * whose operands are all splat constants becomes a splat constant of its
 * type (keeping its name). Elementwise results are computed by
 * interp_eval_node on one element, in INTERP_F32 (operands rounded to f32
 * as stored) and in INTERP_F64; the fold is made only when the f64 value,
 * stored as the node's dtype, equals the f32 one, so the folded module gives
 * the same numbers as the original under both precisions.
 *
 * The identities are the ops' peephole rules (ops/elementwise.c,
 * ops/layout.c); folding is generic. Surviving nodes keep their names; a
 * node replaced by an operand disappears (its uses and any output naming it
 * now refer to the operand). Nodes left without uses are dce's business. */
#include <math.h>
#include <string.h>

#include "ir/interp.h"
#include "passes/pass.h"
#include "passes/peephole_rule.h"

bool peep_splat(const Function *f, int v, double *out) {
    const Node *n = &f->nodes[v];
    if (n->op != OP_CONSTANT || node_attr(n, "data")) return false;
    *out = node_float(n, "value", 0.0);
    return true;
}

static double stored(double v, DType dt, InterpPrecision p) {
    return dt == DT_F32 && p == INTERP_F32 ? (double)(float)v : v;
}

static bool same_double(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

/* The element of a node all of whose operands are splats (vals, in the
 * operands' dtypes dts). False when the value depends on the precision or
 * the node cannot be evaluated. */
static bool fold_value(const Node *n, const double *vals, const DType *dts, double *out) {
    if (n->op == OP_BROADCAST || n->op == OP_RESHAPE || n->op == OP_TRANSPOSE) {
        *out = vals[0];
        return true;
    }
    Node t = *n;
    t.type = type_scalar(n->type.dtype);
    double r[2];
    for (int p = 0; p < 2; p++) {
        InterpPrecision prec = p ? INTERP_F64 : INTERP_F32;
        double buf[3];
        Value ins[3];
        for (int i = 0; i < n->ninputs; i++) {
            buf[i] = stored(vals[i], dts[i], prec);
            ins[i] = (Value){type_scalar(dts[i]), &buf[i]};
        }
        Value o;
        Diag d;
        diag_init(&d);
        InterpOptions io = {prec};
        if (!interp_eval_node(&t, ins, &o, &io, &d)) return false;
        r[p] = o.data[0];
        value_free(&o);
    }
    if (!same_double(stored(r[1], n->type.dtype, INTERP_F32), r[0])) return false;
    *out = r[1];
    return true;
}

static bool foldable(const Node *n) {
    const OpInfo *info = op_info(n->op);
    if (info->cls != OC_PRIMITIVE || n->op == OP_LOOP || n->ninputs < 1 || n->ninputs > 3)
        return false;
    return info->pattern == PK_ELEMWISE || n->op == OP_BROADCAST || n->op == OP_RESHAPE ||
           n->op == OP_TRANSPOSE;
}

int peep_emit(Rewriter *rw, const Node *n, OpKind op, const int *ins, int nin, const Attr *a,
              int na) {
    return func_add_node(rw->b.m, rw->b.f, op, n->name, ins, nin, a, na, n->type);
}

/* An elementwise or layout op whose operands are all splat constants
 * becomes one constant; -1 otherwise. */
static int fold_constant(Rewriter *rw, const Node *n, const int *in) {
    const Function *nf = rw->b.f;
    if (!foldable(n)) return -1;
    double vals[3];
    DType dts[3];
    for (int i = 0; i < n->ninputs; i++) {
        if (!peep_splat(nf, in[i], &vals[i])) return -1;
        dts[i] = nf->nodes[in[i]].type.dtype;
    }
    double v;
    if (!fold_value(n, vals, dts, &v)) return -1;
    Attr a = attr_float("value", v);
    return peep_emit(rw, n, OP_CONSTANT, NULL, 0, &a, 1);
}

/* The new value for old node n (operands in already remapped), or -1 to
 * copy it unchanged: its op's peephole rule, else constant folding. */
static int simplify_node(Rewriter *rw, const Node *n, const int *in, bool drop_sg) {
    const Function *nf = rw->b.f;
    int x = n->ninputs > 0 ? in[0] : -1, y = n->ninputs > 1 ? in[1] : -1;
    const Node *xn = x >= 0 ? &nf->nodes[x] : NULL;
    Peep p = {rw, nf, n, in, x, y, xn, xn && type_equal(&xn->type, &n->type), drop_sg};
    PeepholeRule rule = pass_op_row(n->op)->peephole;
    int r = rule ? rule(&p) : -1;
    return r >= 0 ? r : fold_constant(rw, n, in);
}

static bool simplify_function(Module *m, Function *f, bool drop_sg, Diag *d) {
    Rewriter rw;
    rw_begin(&rw, m, f, d);
    for (int id = 0; id < f->n; id++) {
        const Node *n = &f->nodes[id];
        int ins[3];
        int v = -1;
        if (n->ninputs <= 3 && n->op != OP_INPUT) {
            for (int i = 0; i < n->ninputs; i++) ins[i] = rw.map[n->inputs[i]];
            v = simplify_node(&rw, n, ins, drop_sg);
        }
        if (v >= 0)
            rw.map[id] = v;
        else
            rw_copy(&rw, id);
    }
    return rw_finish(&rw);
}

bool pass_simplify(Module *m, PassCtx *ctx) {
    bool has_grad = false;
    for (int i = 0; i < m->nfuncs; i++)
        for (int k = 0; k < m->funcs[i]->n; k++) has_grad |= m->funcs[i]->nodes[k].op == OP_GRAD;
    for (int i = 0; i < m->nfuncs; i++)
        if (!simplify_function(m, m->funcs[i], !has_grad, ctx->d)) return false;
    return true;
}
