/* Private to simplify (passes/simplify.c) and the peephole rules in the ops/
 * families' passes sections. A rule returns the new value for old node n
 * (operands in, already remapped), or -1 when it does not apply. */
#ifndef IGRC_PEEPHOLE_RULE_H
#define IGRC_PEEPHOLE_RULE_H

#include "passes/pass_rows.h"

struct Peep {
    Rewriter *rw;
    const Function *nf; /* the function being built */
    const Node *n;
    const int *in;
    int x, y;           /* in[0], in[1] or -1 */
    const Node *xn;     /* the node of x */
    bool same_type;     /* x has n's type */
    bool drop_sg;       /* no grad is left: stop_gradient is the identity */
};

/* Is value v of f a splat constant (`constant {value}`)? Its element in *out. */
bool peep_splat(const Function *f, int v, double *out);
/* A new node named like old node n, of n's type. */
int peep_emit(Rewriter *rw, const Node *n, OpKind op, const int *ins, int nin, const Attr *a,
              int na);

#endif
