/* The importer's values and errors: every message starts with the file
 * and, while a node is converted, the node (index, name, op type). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/onnx_internal.h"

const char *ox_node_label(Ox *o, int i) {
    const Onnx__NodeProto *n = o->g->node[i];
    const char *name = n->name && n->name[0] ? n->name : NULL;
    return arena_printf(o->arena, "node %d%s%s%s (%s)", i, name ? " '" : "", name ? name : "",
                        name ? "'" : "", n->op_type ? n->op_type : "no op_type");
}

bool ox_fail(Ox *o, const char *fmt, ...) {
    if (o->failed) return false;
    o->failed = true;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (o->cur >= 0)
        snprintf(o->err, o->errcap, "%s: %s: %s", o->label, ox_node_label(o, o->cur), msg);
    else
        snprintf(o->err, o->errcap, "%s: %s", o->label, msg);
    return false;
}

int ox_find(Ox *o, const char *name) { return name ? strmap_get(o->by_name, name) : -1; }

/* Room for extra more values without moving o->vals: converting a node
 * holds pointers into it while adding its results. */
void ox_reserve_values(Ox *o, int extra) {
    if (o->nvals + extra <= o->capvals) return;
    o->capvals = 2 * (o->nvals + extra);
    OxValue *v = realloc(o->vals, sizeof *v * (size_t)o->capvals);
    if (!v) abort();
    o->vals = v;
}

/* A new value called name (a later definition of the same name wins, as
 * ONNX allows none: an error). */
int ox_add_value(Ox *o, const char *name) {
    if (!name || !name[0]) return ox_fail(o, "a value without a name"), -1;
    if (ox_find(o, name) >= 0) return ox_fail(o, "value '%s' is defined twice", name), -1;
    if (o->nvals == o->capvals) {
        o->capvals = o->capvals ? 2 * o->capvals : 64;
        OxValue *v = realloc(o->vals, sizeof *v * (size_t)o->capvals);
        if (!v) abort();
        o->vals = v;
    }
    OxValue *v = &o->vals[o->nvals];
    memset(v, 0, sizeof *v);
    v->name = arena_strdup(o->arena, name);
    strmap_put(o->by_name, v->name, o->nvals);
    return o->nvals++;
}
