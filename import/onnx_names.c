/* Graph node ids for ONNX nodes. Parameters keep PyTorch's state_dict
 * names where the initializers carry them (conv1.weight -> node conv1);
 * other nodes get an id from the node's name (/layer1/layer1.0/relu/Relu
 * -> layer1.0.relu.Relu), made unique. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "import/onnx_internal.h"

#define MAX_ID 100

/* s with every character outside the graph format's name set replaced by
 * '_', cut to MAX_ID characters; never empty. */
const char *ox_sanitize(Ox *o, const char *s) {
    char buf[MAX_ID + 1];
    size_t k = 0;
    for (; s && s[k] && k < MAX_ID; k++) {
        unsigned char ch = (unsigned char)s[k];
        buf[k] = isalnum(ch) || ch == '_' || ch == '.' || ch == ':' || ch == '-' ? (char)ch : '_';
    }
    buf[k] = 0;
    return arena_strdup(o->arena, k ? buf : "n");
}

/* Reserves id, or the first of id_2, id_3, ... that is free. */
static const char *unique(Ox *o, const char *id) {
    const char *try = id;
    for (int k = 2; strmap_get(o->ids, try) >= 0; k++)
        try = arena_printf(o->arena, "%s_%d", id, k);
    strmap_put(o->ids, try, 1);
    return try;
}

/* The node name's module path: components joined by dots, each dropped
 * when the next extends it (PyTorch names "/layer1/layer1.0/conv1/Conv"). */
static const char *from_node_name(Ox *o, const char *name) {
    char out[512] = "", comp[8][128];
    int nc = 0;
    for (const char *p = name; *p && nc < 8;) {
        while (*p == '/') p++;
        size_t len = strcspn(p, "/");
        if (len) snprintf(comp[nc++], sizeof comp[0], "%.*s", (int)len, p);
        p += len;
    }
    for (int i = 0; i < nc; i++) {
        size_t l = strlen(comp[i]);
        if (i + 1 < nc && strncmp(comp[i + 1], comp[i], l) == 0 && comp[i + 1][l] == '.') continue;
        if (i == nc - 1) /* the op type: Relu_1 -> relu_1 */
            for (char *c = comp[i]; *c; c++) *c = (char)tolower((unsigned char)*c);
        if (out[0]) strncat(out, ".", sizeof out - strlen(out) - 1);
        strncat(out, comp[i], sizeof out - strlen(out) - 1);
    }
    return out[0] ? ox_sanitize(o, out) : NULL;
}

const char *ox_node_id(Ox *o, const Onnx__NodeProto *n) {
    const char *id = n->name && n->name[0] ? from_node_name(o, n->name) : NULL;
    if (!id) {
        char buf[96];
        snprintf(buf, sizeof buf, "%s_%d", n->op_type ? n->op_type : "node", o->cur);
        for (char *p = buf; *p; p++) *p = (char)tolower((unsigned char)*p);
        id = ox_sanitize(o, buf);
    }
    return unique(o, id);
}

const char *ox_param_id(Ox *o, const Onnx__NodeProto *n, const char *init_name,
                        const char *suffix) {
    size_t l = init_name ? strlen(init_name) : 0, ls = strlen(suffix);
    if (l > ls + 1 && l <= MAX_ID && init_name[l - ls - 1] == '.' &&
        strcmp(init_name + l - ls, suffix) == 0) {
        const char *id = arena_printf(o->arena, "%.*s", (int)(l - ls - 1), init_name);
        if (strcmp(ox_sanitize(o, id), id) == 0 && strmap_get(o->ids, id) < 0) {
            strmap_put(o->ids, id, 1);
            return id;
        }
    }
    return ox_node_id(o, n);
}

const char *ox_param_suffix(Ox *o, const char *init_name) {
    const char *dot = init_name ? strrchr(init_name, '.') : NULL;
    const char *s = ox_sanitize(o, dot && dot[1] ? dot + 1 : init_name);
    char *t = arena_strdup(o->arena, s);
    for (char *p = t; *p; p++)
        if (*p == '.') *p = '_';
    return t;
}
