/* The verifier: what every pass may assume about a module. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/shape.h"

static const char *kind_word(AttrSpecKind k) {
    static const char *const w[] = {"an integer", "a number", "a list of integers",
                                    "a list of numbers", "a string", "a dtype"};
    return w[k];
}

static bool kind_matches(AttrSpecKind want, AttrKind got) {
    switch (want) {
    case AK_INT: return got == ATTR_INT;
    case AK_FLOAT: return got == ATTR_FLOAT || got == ATTR_INT;
    case AK_INTS: return got == ATTR_INTS;
    case AK_FLOATS: return got == ATTR_FLOATS;
    case AK_STR: return got == ATTR_STR;
    case AK_DTYPE: return got == ATTR_DTYPE;
    }
    return false;
}

static bool in_range(const AttrSpec *s, double v) { return !(v < s->lo) && !(v > s->hi); }

static bool bad_attr(const Node *n, Diag *d, const char *key, const char *what) {
    return diag_error(d, EXIT_BADINPUT, "node '%s' (%s): attribute '%s' %s", n->name,
                      op_name(n->op), key, what);
}

static bool check_one(const Node *n, const AttrSpec *s, const Attr *a, int rank, Diag *d) {
    char what[256];
    if (!kind_matches(s->kind, a->kind)) {
        snprintf(what, sizeof what, "must be %s", kind_word(s->kind));
        return bad_attr(n, d, s->key, what);
    }
    int want = s->count < 0 ? rank : s->count;
    if ((s->kind == AK_INTS || s->kind == AK_FLOATS) && want > 0 && a->n != want) {
        snprintf(what, sizeof what, "must have %d entries, has %d", want, a->n);
        return bad_attr(n, d, s->key, what);
    }
    if (s->kind == AK_STR || s->kind == AK_DTYPE) return true;
    int count = (s->kind == AK_INTS || s->kind == AK_FLOATS) ? a->n : 1;
    for (int i = 0; i < count; i++) {
        double v = s->kind == AK_INTS     ? (double)a->ints[i]
                   : s->kind == AK_FLOATS ? a->floats[i]
                   : a->kind == ATTR_INT  ? (double)a->i
                                          : a->f;
        if (!in_range(s, v)) {
            snprintf(what, sizeof what, "is out of range: %g not in [%g, %g]", v, s->lo, s->hi);
            return bad_attr(n, d, s->key, what);
        }
    }
    return true;
}

bool attrs_check(const Module *m, const Function *f, const Node *n, Diag *d) {
    (void)m;
    const AttrSpec *spec = op_info(n->op)->attrs;
    int rank = n->ninputs ? f->nodes[n->inputs[0]].type.rank : n->type.rank;
    for (int i = 0; i < n->nattrs; i++) {
        const AttrSpec *s = spec;
        while (s->key && strcmp(s->key, n->attrs[i].key) != 0) s++;
        if (!s->key) return bad_attr(n, d, n->attrs[i].key, "is not known for this op");
        if (!check_one(n, s, &n->attrs[i], rank, d)) return false;
    }
    for (const AttrSpec *s = spec; s->key; s++)
        if (s->required && !node_attr(n, s->key)) return bad_attr(n, d, s->key, "is required");
    return true;
}

static bool check_operands(const Function *f, int id, Diag *d) {
    const Node *n = &f->nodes[id];
    const OpInfo *info = op_info(n->op);
    if (!info) return diag_error(d, EXIT_BADINPUT, "node %d: invalid op %d", id, (int)n->op);
    if (n->ninputs < info->min_inputs || (info->max_inputs >= 0 && n->ninputs > info->max_inputs))
        return diag_error(d, EXIT_BADINPUT, "node '%s' (%s): takes %d..%d operands, has %d",
                          n->name, info->name, info->min_inputs, info->max_inputs, n->ninputs);
    for (int i = 0; i < n->ninputs; i++)
        if (n->inputs[i] < 0 || n->inputs[i] >= id)
            return diag_error(d, EXIT_BADINPUT,
                              "node '%s' (%s): operand %d is not defined before its use", n->name,
                              info->name, i);
    return true;
}

bool ir_verify_function(const Module *m, const Function *f, Diag *d) {
    for (int id = 0; id < f->n; id++) {
        const Node *n = &f->nodes[id];
        Type t;
        if (!check_operands(f, id, d) || !attrs_check(m, f, n, d) || !shape_infer(m, f, n, &t, d))
            goto fail;
        if (!type_equal(&t, &n->type)) {
            char a[128], b[128];
            diag_error(d, EXIT_BADINPUT, "node '%s' (%s): declared type %s, inferred %s", n->name,
                       op_name(n->op), type_str(&n->type, a, sizeof a), type_str(&t, b, sizeof b));
            goto fail;
        }
        if (func_find(f, n->name) != id) {
            diag_error(d, EXIT_BADINPUT, "value name '%s' is defined twice", n->name);
            goto fail;
        }
    }
    for (int i = 0; i < f->noutputs; i++)
        if (f->outputs[i].value < 0 || f->outputs[i].value >= f->n) {
            diag_error(d, EXIT_BADINPUT, "output '%s' refers to no value", f->outputs[i].name);
            goto fail;
        }
    return true;
fail:
    diag_prefix(d, "function '%s'", f->name);
    return false;
}

bool ir_verify(const Module *m, Diag *d) {
    for (int i = 0; i < m->nfuncs; i++)
        if (!ir_verify_function(m, m->funcs[i], d)) return false;
    return true;
}
