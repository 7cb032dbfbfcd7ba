/* The op table: names, arities, pattern kinds and attribute schemas. */
#include "ir/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rt_error.h"

#define BIG 1e18
#define END {NULL, AK_INT, false, 0, 0, 0}

static const AttrSpec NO_ATTRS[] = {END};
static const AttrSpec A_PARAM[] = {{"ref", AK_STR, true, 0, 0, 0}, END};
static const AttrSpec A_CONSTANT[] = {{"data", AK_FLOATS, false, 0, -INFINITY, INFINITY},
                                      {"value", AK_FLOAT, false, 0, -INFINITY, INFINITY},
                                      END};
static const AttrSpec A_IOTA[] = {{"axis", AK_INT, true, 0, 0, 5}, END};
static const AttrSpec A_RANDOM[] = {{"stream", AK_INT, true, 0, 0, 4294967295.0}, END};
static const AttrSpec A_BERNOULLI[] = {{"p", AK_FLOAT, true, 0, 0, 1},
                                       {"stream", AK_INT, true, 0, 0, 4294967295.0},
                                       END};
static const AttrSpec A_SOFTPLUS[] = {{"beta", AK_FLOAT, false, 0, 1e-6, 1e6}, END};
static const AttrSpec A_GELU[] = {{"approximate", AK_STR, false, 0, 0, 0}, END};
static const AttrSpec A_ALPHA[] = {{"alpha", AK_FLOAT, false, 0, -1e6, 1e6}, END};
static const AttrSpec A_CAST[] = {{"dtype", AK_DTYPE, true, 0, 0, 0}, END};
static const AttrSpec A_SHAPE[] = {{"shape", AK_INTS, true, 0, 0, BIG}, END};
static const AttrSpec A_PERM[] = {{"perm", AK_INTS, true, -1, 0, 5}, END};
static const AttrSpec A_SLICE[] = {{"start", AK_INTS, true, -1, 0, BIG},
                                   {"step", AK_INTS, true, -1, 1, BIG},
                                   {"stop", AK_INTS, true, -1, 0, BIG},
                                   END};
static const AttrSpec A_AXIS[] = {{"axis", AK_INT, true, 0, 0, 5}, END};
static const AttrSpec A_PAD[] = {{"hi", AK_INTS, true, -1, 0, BIG},
                                 {"lo", AK_INTS, true, -1, 0, BIG},
                                 {"value", AK_FLOAT, false, 0, -INFINITY, INFINITY},
                                 END};
static const AttrSpec A_REDUCE[] = {{"axes", AK_INTS, true, 0, 0, 5},
                                    {"keepdims", AK_INT, false, 0, 0, 1},
                                    END};
static const AttrSpec A_CONV[] = {{"padding", AK_INTS, true, 2, 0, 1 << 20},
                                  {"stride", AK_INTS, true, 2, 1, 1 << 20},
                                  END};
static const AttrSpec A_CONV_BD[] = {{"input_shape", AK_INTS, true, 4, 1, BIG},
                                     {"padding", AK_INTS, true, 2, 0, 1 << 20},
                                     {"stride", AK_INTS, true, 2, 1, 1 << 20},
                                     END};
static const AttrSpec A_CONV_BF[] = {{"kernel", AK_INTS, true, 2, 1, 1 << 20},
                                     {"padding", AK_INTS, true, 2, 0, 1 << 20},
                                     {"stride", AK_INTS, true, 2, 1, 1 << 20},
                                     END};
static const AttrSpec A_MAXPOOL[] = {{"kernel", AK_INTS, true, 2, 1, 1 << 20},
                                     {"padding", AK_INTS, true, 2, 0, 1 << 20},
                                     {"stride", AK_INTS, true, 2, 1, 1 << 20},
                                     END};
static const AttrSpec A_AVGPOOL[] = {{"kernel", AK_INTS, true, 2, 1, 1 << 20},
                                     {"stride", AK_INTS, true, 2, 1, 1 << 20},
                                     END};
static const AttrSpec A_AVGPOOL_BWD[] = {{"input_shape", AK_INTS, true, 4, 1, BIG},
                                         {"kernel", AK_INTS, true, 2, 1, 1 << 20},
                                         {"stride", AK_INTS, true, 2, 1, 1 << 20},
                                         END};
static const AttrSpec A_ONE_HOT[] = {{"depth", AK_INT, true, 0, 1, 1 << 30},
                                     {"dtype", AK_DTYPE, false, 0, 0, 0},
                                     END};
static const AttrSpec A_BATCH_NORM[] = {{"eps", AK_FLOAT, false, 0, 0, 1},
                                        {"groups", AK_INT, false, 0, 1, 1 << 20},
                                        {"training", AK_INT, true, 0, 0, 1},
                                        END};
static const AttrSpec A_DROPOUT[] = {{"p", AK_FLOAT, true, 0, 0, 0.999999},
                                     {"stream", AK_INT, true, 0, 0, 4294967295.0},
                                     {"training", AK_INT, true, 0, 0, 1},
                                     END};
static const AttrSpec A_SOFTMAX[] = {{"axis", AK_INT, true, 0, 0, 5}, END};
static const AttrSpec A_CE[] = {{"reduction", AK_STR, false, 0, 0, 0}, END};
static const AttrSpec A_KL[] = {{"eps", AK_FLOAT, false, 0, 0, 1},
                                {"reduction", AK_STR, false, 0, 0, 0},
                                END};
static const AttrSpec A_COSINE[] = {{"eps", AK_FLOAT, false, 0, 0, 1}, END};
static const AttrSpec A_FUSED[] = {{"body", AK_STR, true, 0, 0, 0}, {NULL, 0, 0, 0, 0, 0}};
static const AttrSpec A_LOOP[] = {{"body", AK_STR, true, 0, 0, 0},
                                  {"trips", AK_INT, true, 0, 0, 1 << 30},
                                  END};

static const AttrSpec *attrs_of(OpKind op) {
    switch (op) {
    case OP_PARAM: return A_PARAM;
    case OP_CONSTANT: return A_CONSTANT;
    case OP_IOTA: return A_IOTA;
    case OP_RANDOM_UNIFORM:
    case OP_RANDOM_NORMAL: return A_RANDOM;
    case OP_RANDOM_BERNOULLI: return A_BERNOULLI;
    case OP_SOFTPLUS: return A_SOFTPLUS;
    case OP_CAST: return A_CAST;
    case OP_BROADCAST:
    case OP_RESHAPE: return A_SHAPE;
    case OP_TRANSPOSE: return A_PERM;
    case OP_SLICE: return A_SLICE;
    case OP_CONCAT:
    case OP_ARGMAX: return A_AXIS;
    case OP_PAD: return A_PAD;
    case OP_REDUCE_SUM:
    case OP_REDUCE_MAX: return A_REDUCE;
    case OP_CONV2D: return A_CONV;
    case OP_CONV2D_BWD_DATA: return A_CONV_BD;
    case OP_CONV2D_BWD_FILTER: return A_CONV_BF;
    case OP_MAXPOOL2D:
    case OP_MAXPOOL2D_BWD:
    case OP_MAXPOOL2D_SELECT: return A_MAXPOOL;
    case OP_AVGPOOL2D: return A_AVGPOOL;
    case OP_AVGPOOL2D_BWD: return A_AVGPOOL_BWD;
    case OP_ONE_HOT: return A_ONE_HOT;
    case OP_BATCH_NORM: return A_BATCH_NORM;
    case OP_DROPOUT: return A_DROPOUT;
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX: return A_SOFTMAX;
    case OP_CROSS_ENTROPY:
    case OP_MART_BCE: return A_CE;
    case OP_KL_DIV: return A_KL;
    case OP_COSINE_SIMILARITY: return A_COSINE;
    case OP_GELU: return A_GELU;
    case OP_LEAKY_RELU:
    case OP_ELU: return A_ALPHA;
    case OP_LOOP: return A_LOOP;
    case OP_FUSED: return A_FUSED;
    default: return NO_ATTRS;
    }
}

static OpInfo TABLE[OP_COUNT] = {
#define IR_OP_ROW(e, nm, mn, mx, pk, cl) [OP_##e] = {nm, mn, mx, pk, cl, NULL},
    IR_OPS(IR_OP_ROW)
#undef IR_OP_ROW
};

const OpInfo *op_info(OpKind op) {
    if ((unsigned)op >= OP_COUNT) return NULL;
    OpInfo *info = &TABLE[op];
    if (!info->attrs) info->attrs = attrs_of(op);
    return info;
}

const char *op_name(OpKind op) { return (unsigned)op < OP_COUNT ? TABLE[op].name : "?"; }

bool op_lookup(const char *name, OpKind *out) {
    for (int i = 0; i < OP_COUNT; i++)
        if (strcmp(TABLE[i].name, name) == 0) {
            *out = (OpKind)i;
            return true;
        }
    return false;
}

const char *op_closest(const char *name) {
    const char *best = NULL;
    int bd = 1 << 30;
    for (int i = 0; i < OP_COUNT; i++) {
        int d = rt_edit_distance(name, TABLE[i].name);
        if (d < bd) {
            bd = d;
            best = TABLE[i].name;
        }
    }
    return best;
}

const char *pattern_name(PatternKind p) {
    static const char *const names[] = {"elementwise", "broadcast", "injective",
                                        "reduction",   "complex",   "opaque"};
    return (unsigned)p <= PK_OPAQUE ? names[p] : "?";
}
