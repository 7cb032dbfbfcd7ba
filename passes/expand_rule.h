/* Private to decompose (passes/decompose.c) and the expansions in the ops/
 * families' passes sections: the composite being expanded and the names of
 * its parts. The last node of each expansion keeps the composite's name;
 * intermediates get <name>.<part>. */
#ifndef IGRC_EXPAND_RULE_H
#define IGRC_EXPAND_RULE_H

#include "passes/pass_rows.h"

struct Exp {
    Builder *b;
    const Node *n;   /* the composite being expanded */
    const int *in;   /* its operands, already remapped */
};

static inline const char *part(Exp *e, const char *what) {
    return arena_printf(e->b->m->arena, "%s.%s", e->n->name, what);
}

/* v broadcast to like's type. */
static inline int scalar(Exp *e, const char *what, double v, const Type *like) {
    Type t = *like;
    int c = b_const(e->b, part(e, what), v, type_scalar(t.dtype));
    return b_broadcast(e->b, part(e, what), c, &t);
}

#endif
