/* Layers with weights and windows: Conv, ConvTranspose, Gemm, MatMul, MaxPool,
 * AveragePool, GlobalAveragePool, BatchNormalization. */
#include <string.h>

#include "import/onnx_internal.h"

/* A computed input of rank `rank` (0: any). */
static int computed(Ox *o, const Onnx__NodeProto *n, size_t k, int rank) {
    int v = ox_input(o, n, k);
    if (v < 0) return -1;
    if (o->vals[v].is_const)
        return ox_fail(o, "input %zu '%s' is a constant; the importer needs the network's "
                          "input here", k, o->vals[v].name), -1;
    if (rank && o->vals[v].rank != rank)
        return ox_fail(o, "input %zu '%s' has rank %d, expected %d", k, o->vals[v].name,
                       o->vals[v].rank, rank), -1;
    return v;
}

static bool only_first_output(Ox *o, const Onnx__NodeProto *n) {
    for (size_t k = 1; k < n->n_output; k++)
        if (n->output[k] && n->output[k][0])
            return ox_fail(o, "output %zu ('%s') is not supported (only the first)", k,
                           n->output[k]);
    return true;
}

/* kernel, strides, pads (symmetric), dilations 1 of a 2-D window op. */
typedef struct {
    int64_t k[2], s[2], p[2];
} Window;

static bool window(Ox *o, const Onnx__NodeProto *n, const int64_t *kernel, Window *w) {
    int64_t v[2 * OX_MAX_RANK];
    int cnt;
    const char *ap = ox_attr_str(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") && strcmp(ap, "VALID"))
        return ox_fail(o, "auto_pad '%s' is not supported (NOTSET or VALID)", ap);
    if (!ox_attr_ints(o, n, "kernel_shape", v, &cnt)) return false;
    if (cnt && cnt != 2) return ox_fail(o, "only 2-D windows are supported");
    if (!kernel && !cnt) return ox_fail(o, "attribute 'kernel_shape' is required");
    for (int i = 0; i < 2; i++) w->k[i] = cnt ? v[i] : kernel[i];
    if (kernel && cnt && (v[0] != kernel[0] || v[1] != kernel[1]))
        return ox_fail(o, "kernel_shape differs from the weight's");
    if (!ox_attr_ints(o, n, "strides", v, &cnt)) return false;
    if (cnt && cnt != 2) return ox_fail(o, "attribute 'strides' needs 2 entries");
    for (int i = 0; i < 2; i++) w->s[i] = cnt ? v[i] : 1;
    if (!ox_attr_ints(o, n, "pads", v, &cnt)) return false;
    if (cnt && cnt != 4) return ox_fail(o, "attribute 'pads' needs 4 entries");
    if (cnt && (v[0] != v[2] || v[1] != v[3]))
        return ox_fail(o, "asymmetric pads [%lld,%lld,%lld,%lld] are not supported",
                       (long long)v[0], (long long)v[1], (long long)v[2], (long long)v[3]);
    for (int i = 0; i < 2; i++) w->p[i] = cnt ? v[i] : 0;
    if (!ox_attr_ints(o, n, "dilations", v, &cnt)) return false;
    for (int i = 0; i < cnt; i++)
        if (v[i] != 1) return ox_fail(o, "dilations other than 1 are not supported");
    for (int i = 0; i < 2; i++)
        if (w->k[i] < 1 || w->s[i] < 1 || w->p[i] < 0 || w->k[i] > (1 << 20) ||
            w->s[i] > (1 << 20) || w->p[i] > (1 << 20))
            return ox_fail(o, "kernel, strides and pads must be positive (pads >= 0)");
    return true;
}

static bool window_out(Ox *o, const OxValue *x, const Window *w, bool ceil_mode, int64_t *out) {
    for (int i = 0; i < 2; i++) {
        int64_t span = x->dim[2 + i] + 2 * w->p[i] - w->k[i];
        if (span < 0) return ox_fail(o, "the window is larger than the padded input");
        out[2 + i] = span / w->s[i] + 1;
        if (ceil_mode && span % w->s[i] && (out[2 + i]) * w->s[i] < x->dim[2 + i] + w->p[i])
            return ox_fail(o, "ceil_mode 1 changes the output size here; only floor is supported");
    }
    return true;
}

static void window_json(cJSON *node, const Window *w) {
    cJSON_AddItemToObject(node, "kernel", ox_ints_json(w->k, 2));
    cJSON_AddItemToObject(node, "stride", ox_ints_json(w->s, 2));
    cJSON_AddItemToObject(node, "padding", ox_ints_json(w->p, 2));
}

bool ox_conv(Ox *o, const Onnx__NodeProto *n) {
    int x = computed(o, n, 0, 4), w = x < 0 ? -1 : ox_const_input(o, n, 1, "the weight");
    int b = w < 0 ? -1 : ox_opt_input(o, n, 2);
    int64_t group;
    if (b == -1 || !ox_attr_int(o, n, "group", 1, &group)) return false;
    if (group != 1) return ox_fail(o, "grouped convolutions (group %lld) are not supported", (long long)group);
    const OxValue *W = &o->vals[w];
    if (W->rank != 4 || W->dim[1] != o->vals[x].dim[1])
        return ox_fail(o, "the weight must be [out, %lld, kh, kw]", (long long)o->vals[x].dim[1]);
    Window win;
    if (!window(o, n, W->dim + 2, &win)) return false;
    if (b >= 0 && (!o->vals[b].is_const || o->vals[b].numel != W->dim[0]))
        return ox_fail(o, "the bias must be a constant of %lld values", (long long)W->dim[0]);
    int64_t dim[4] = {o->vals[x].dim[0], W->dim[0]};
    if (!window_out(o, &o->vals[x], &win, false, dim)) return false;
    const char *id = ox_param_id(o, n, W->name, "weight");
    if (!ox_weight(o, id, "weight", w, false, 1, true) ||
        (b >= 0 && !ox_weight(o, id, "bias", b, false, 1, true)))
        return false;
    if (b >= 0) o->w[o->nw - 1].rank = 1, o->w[o->nw - 1].shape[0] = W->dim[0];
    cJSON *node = ox_emit(o, id, "conv2d", &x, 1);
    cJSON_AddNumberToObject(node, "out_channels", (double)W->dim[0]);
    window_json(node, &win);
    cJSON_AddBoolToObject(node, "bias", b >= 0);
    return ox_define(o, n, 0, id, 4, dim) >= 0;
}

/* ConvTranspose: group 1, no output_shape; weight [C, out, kh, kw]. */
bool ox_conv_transpose(Ox *o, const Onnx__NodeProto *n) {
    int x = computed(o, n, 0, 4), w = x < 0 ? -1 : ox_const_input(o, n, 1, "the weight");
    int b = w < 0 ? -1 : ox_opt_input(o, n, 2), cnt;
    int64_t group, op[2 * OX_MAX_RANK];
    if (b == -1 || !ox_attr_int(o, n, "group", 1, &group) ||
        !ox_attr_ints(o, n, "output_padding", op, &cnt))
        return false;
    if (group != 1) return ox_fail(o, "grouped transposed convolutions are not supported");
    if (ox_attr(n, "output_shape")) return ox_fail(o, "output_shape is not supported (use pads)");
    if (cnt && cnt != 2) return ox_fail(o, "output_padding needs 2 entries");
    const OxValue *W = &o->vals[w], *X = &o->vals[x];
    if (W->rank != 4 || W->dim[0] != X->dim[1])
        return ox_fail(o, "the weight must be [%lld, out, kh, kw]", (long long)X->dim[1]);
    Window win;
    if (!window(o, n, W->dim + 2, &win)) return false;
    if (b >= 0 && (!o->vals[b].is_const || o->vals[b].numel != W->dim[1]))
        return ox_fail(o, "the bias must be a constant of %lld values", (long long)W->dim[1]);
    int64_t dim[4] = {X->dim[0], W->dim[1]}, opad[2] = {cnt ? op[0] : 0, cnt ? op[1] : 0};
    for (int i = 0; i < 2; i++) {
        if (opad[i] < 0 || opad[i] >= win.s[i] || win.p[i] >= win.k[i])
            return ox_fail(o, "output_padding must be below the stride, pads below the kernel");
        dim[2 + i] = (X->dim[2 + i] - 1) * win.s[i] - 2 * win.p[i] + win.k[i] + opad[i];
    }
    const char *id = ox_param_id(o, n, W->name, "weight");
    if (!ox_weight(o, id, "weight", w, false, 1, true) ||
        (b >= 0 && !ox_weight(o, id, "bias", b, false, 1, true)))
        return false;
    if (b >= 0) o->w[o->nw - 1].rank = 1, o->w[o->nw - 1].shape[0] = W->dim[1];
    cJSON *node = ox_emit(o, id, "conv_transpose2d", &x, 1);
    cJSON_AddNumberToObject(node, "out_channels", (double)W->dim[1]);
    window_json(node, &win);
    if (opad[0] || opad[1]) cJSON_AddItemToObject(node, "output_padding", ox_ints_json(opad, 2));
    cJSON_AddBoolToObject(node, "bias", b >= 0);
    return ox_define(o, n, 0, id, 4, dim) >= 0;
}

/* linear from a weight [in, out] (or [out, in] when wt) and a bias. */
static bool linear(Ox *o, const Onnx__NodeProto *n, size_t out, int x, int w, bool wt, double alpha,
                   int b, double beta, const char *id) {
    const OxValue *W = &o->vals[w], *X = &o->vals[x];
    int64_t in = wt ? W->dim[1] : W->dim[0], of = wt ? W->dim[0] : W->dim[1];
    if (in != X->dim[X->rank - 1])
        return ox_fail(o, "the weight %s has %lld inputs, the input %lld features", W->name,
                       (long long)in, (long long)X->dim[X->rank - 1]);
    if (b >= 0 && (!o->vals[b].is_const || o->vals[b].numel != of || o->vals[b].rank > 2))
        return ox_fail(o, "the bias must be a constant of %lld values", (long long)of);
    if (!ox_weight(o, id, "weight", w, !wt, alpha, true) ||
        (b >= 0 && !ox_weight(o, id, "bias", b, false, beta, true)))
        return false;
    if (b >= 0) o->w[o->nw - 1].rank = 1, o->w[o->nw - 1].shape[0] = of;
    cJSON *node = ox_emit(o, id, "linear", &x, 1);
    cJSON_AddNumberToObject(node, "out_features", (double)of);
    cJSON_AddBoolToObject(node, "bias", b >= 0);
    int64_t dim[OX_MAX_RANK];
    memcpy(dim, X->dim, sizeof dim);
    dim[X->rank - 1] = of;
    if (X->rank > 2) cJSON_AddBoolToObject(node, "last_axis", true);
    return ox_define(o, n, out, id, X->rank, dim) >= 0;
}

bool ox_gemm(Ox *o, const Onnx__NodeProto *n) {
    int x = computed(o, n, 0, 2), w = x < 0 ? -1 : ox_const_input(o, n, 1, "B (the weight)");
    int b = w < 0 ? -1 : ox_opt_input(o, n, 2);
    int64_t ta, tb;
    double alpha, beta;
    if (b == -1 || !ox_attr_int(o, n, "transA", 0, &ta) || !ox_attr_int(o, n, "transB", 0, &tb) ||
        !ox_attr_float(o, n, "alpha", 1, &alpha) || !ox_attr_float(o, n, "beta", 1, &beta))
        return false;
    if (ta) return ox_fail(o, "transA 1 is not supported");
    if (o->vals[w].rank != 2) return ox_fail(o, "B must be a matrix");
    const char *id = ox_param_id(o, n, o->vals[w].name, "weight");
    return linear(o, n, 0, x, w, tb != 0, alpha, b, beta, id);
}

/* MatMul by a constant matrix: linear without bias, or with the bias of
 * an Add that alone reads it (PyTorch's Linear on a non-2-D input). */
bool ox_matmul(Ox *o, const Onnx__NodeProto *n) {
    int x = computed(o, n, 0, 0), w = x < 0 ? -1 : ox_const_input(o, n, 1, "the second operand");
    if (w < 0) return false;
    if (o->vals[x].rank < 2) return ox_fail(o, "the first operand needs rank 2 or more");
    if (o->vals[w].rank != 2) return ox_fail(o, "the second operand must be a matrix");
    int add = -1, b = -2;
    for (int j = o->cur + 1; j < (int)o->g->n_node; j++) {
        const Onnx__NodeProto *m = o->g->node[j];
        for (size_t k = 0; k < m->n_input; k++)
            if (m->input[k] && n->n_output && n->output[0] && strcmp(m->input[k], n->output[0]) == 0)
                add = add == -1 && m->op_type && strcmp(m->op_type, "Add") == 0 && m->n_input == 2
                          ? j : -2;
    }
    if (add >= 0) {
        const Onnx__NodeProto *a = o->g->node[add];
        int other = strcmp(a->input[0], n->output[0]) == 0 ? 1 : 0;
        int c = a->input[other] ? ox_find(o, a->input[other]) : -1;
        if (c >= 0 && o->vals[c].is_const && o->vals[c].rank == 1 &&
            o->vals[c].numel == o->vals[w].dim[1])
            b = c;
    }
    const char *id = b >= 0 ? ox_param_id(o, n, o->vals[b].name, "bias")
                            : ox_param_id(o, n, o->vals[w].name, "weight");
    if (b < 0) return linear(o, n, 0, x, w, false, 1, -2, 1, id);
    o->absorbed[add] = true;
    return linear(o, o->g->node[add], 0, x, w, false, 1, b, 1, id);
}

bool ox_pool(Ox *o, const Onnx__NodeProto *n) {
    bool avg = strcmp(n->op_type, "AveragePool") == 0;
    int x = computed(o, n, 0, 4);
    int64_t ceil_mode, include_pad;
    Window win;
    if (x < 0 || !only_first_output(o, n) || !window(o, n, NULL, &win) ||
        !ox_attr_int(o, n, "ceil_mode", 0, &ceil_mode) ||
        !ox_attr_int(o, n, "count_include_pad", 0, &include_pad))
        return false;
    if (2 * win.p[0] > win.k[0] || 2 * win.p[1] > win.k[1])
        return ox_fail(o, "pads must be at most half the kernel");
    int64_t dim[4] = {o->vals[x].dim[0], o->vals[x].dim[1]};
    if (!window_out(o, &o->vals[x], &win, ceil_mode != 0, dim)) return false;
    const char *id = ox_node_id(o, n);
    cJSON *node = ox_emit(o, id, avg ? "avgpool2d" : "maxpool2d", &x, 1);
    window_json(node, &win);
    if (avg) cJSON_AddBoolToObject(node, "count_include_pad", include_pad != 0);
    return ox_define(o, n, 0, id, 4, dim) >= 0;
}

bool ox_global_pool(Ox *o, const Onnx__NodeProto *n) {
    int x = computed(o, n, 0, 4);
    if (x < 0) return false;
    const OxValue *X = &o->vals[x];
    int64_t k[2] = {X->dim[2], X->dim[3]}, dim[4] = {X->dim[0], X->dim[1], 1, 1};
    const char *id = ox_node_id(o, n);
    cJSON *node = ox_emit(o, id, "avgpool2d", &x, 1);
    cJSON_AddItemToObject(node, "kernel", ox_ints_json(k, 2));
    return ox_define(o, n, 0, id, 4, dim) >= 0;
}

bool ox_batch_norm(Ox *o, const Onnx__NodeProto *n) {
    static const char *const what[] = {"the scale", "the bias", "the mean", "the variance"};
    static const char *const suffix[] = {"weight", "bias", "running_mean", "running_var"};
    int x = computed(o, n, 0, 0), c[4];
    int64_t training;
    double eps, momentum;
    if (x < 0 || !only_first_output(o, n) || !ox_attr_int(o, n, "training_mode", 0, &training) ||
        !ox_attr_float(o, n, "epsilon", 1e-5, &eps) ||
        !ox_attr_float(o, n, "momentum", 0.9, &momentum))
        return false;
    if (training) return ox_fail(o, "training_mode 1 is not supported (export in eval mode)");
    if (o->vals[x].rank < 2) return ox_fail(o, "the input needs a channel axis");
    if (!(eps >= 0 && eps <= 1 && momentum >= 0 && momentum <= 1))
        return ox_fail(o, "epsilon and momentum must lie in [0, 1]");
    for (int i = 0; i < 4; i++) {
        c[i] = ox_const_input(o, n, (size_t)i + 1, what[i]);
        if (c[i] < 0) return false;
        if (o->vals[c[i]].rank != 1 || o->vals[c[i]].dim[0] != o->vals[x].dim[1])
            return ox_fail(o, "%s must hold %lld values", what[i], (long long)o->vals[x].dim[1]);
    }
    const char *id = ox_param_id(o, n, o->vals[c[0]].name, "weight");
    for (int i = 0; i < 4; i++)
        if (!ox_weight(o, id, suffix[i], c[i], false, 1, i < 2)) return false;
    cJSON *node = ox_emit(o, id, "batch_norm", &x, 1);
    cJSON_AddNumberToObject(node, "eps", eps);
    cJSON_AddNumberToObject(node, "momentum", ox_short(1 - momentum));
    return ox_define(o, n, 0, id, o->vals[x].rank, o->vals[x].dim) >= 0;
}
