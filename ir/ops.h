/* The op table: one enum, one row per op (ggml's habit), and the semantics
 * every backend must reproduce. The reference interpreter is the oracle for
 * these definitions; docs/ir.md repeats them for users.
 *
 * Conventions. Tensors are row-major. Images are NCHW, convolution weights
 * OIHW (PyTorch's layouts). Elementwise binary ops take two operands of the
 * identical type: broadcasting is always an explicit `broadcast` node, so
 * every VJP rule sees equal shapes. Source ops (input, param, constant,
 * iota, random_*) take their result type from the node's declared type.
 *
 * Sources
 *   input()                      a function argument, bound by value name
 *   param() {ref}                the module parameter named ref
 *   constant() {value | data}    every element = value, or data (row-major)
 *   iota() {axis}                element = its index along axis
 *   random_uniform(key) {stream} Philox 4x32-10 numbers, see base/philox.h;
 *   random_normal(key) {stream}    key is i32[2] = (seed, step counter);
 *   random_bernoulli(key) {stream, p}   element i uses counter (i, stream)
 * Elementwise unary (result type = operand type)
 *   neg abs sign exp log sqrt rsqrt recip relu sigmoid tanh erf
 *   softplus {beta=1}: log(1 + exp(beta x)) / beta, computed stably
 *   not (bool), stop_gradient (identity; autodiff treats it as a constant)
 *   cast {dtype}: converts; float -> i32 truncates toward zero
 * Elementwise binary: add sub mul div max min pow, and or (bool)
 * Compare (result bool): eq ne lt le gt ge
 * select(cond, a, b): a where cond else b; cond bool, a and b same type
 * Shape
 *   broadcast(x) {shape}: numpy rule, x's dims aligned to the right, 1 or equal
 *   reshape(x) {shape}; transpose(x) {perm}: out.dim[i] = x.dim[perm[i]]
 *   slice(x) {start, stop, step}: per axis, step >= 1
 *   concat(x...) {axis}; pad(x) {lo, hi, value}
 * Reductions: reduce_sum(x) / reduce_max(x) {axes, keepdims=0}
 *   argmax(x) {axis}: i32 index of the first maximum, the axis removed
 * Linear algebra: matmul(a[..,M,K], b[..,K,N]) -> [..,M,N]
 * Convolution and pooling (no dilation, no groups)
 *   conv2d(x[N,C,H,W], w[O,C,KH,KW]) {stride, padding} -> [N,O,OH,OW],
 *     OH = (H + 2 pad - KH) / stride + 1 (floor)
 *   conv2d_bwd_data(dy, w) {stride, padding, input_shape}: d<dy,conv>/dx
 *   conv2d_bwd_filter(x, dy) {stride, padding, kernel}: d<dy,conv>/dw
 *   maxpool2d(x) {kernel, stride, padding}: padding counts as -inf
 *   maxpool2d_bwd(x, dy) {kernel, stride, padding}: each window sends its dy
 *     to the first maximal element of the window in row-major order
 *   maxpool2d_select(x, g) {kernel, stride, padding}: the transpose of
 *     maxpool2d_bwd in its second operand: each window takes g at the
 *     window's first maximal element of x (g has x's shape)
 *   avgpool2d(x) {kernel, stride, padding=[0,0], count_include_pad=1}: the
 *     window sum, padding counting as 0, divided by KH KW (count_include_pad
 *     1, PyTorch's default) or by the window's in-bounds taps (0, ONNX's);
 *     padding at most half the kernel, so no window is all padding
 *   avgpool2d_bwd(dy) {kernel, stride, padding, count_include_pad,
 *     input_shape}: each window sends dy / its divisor to its in-bounds taps
 * Indexing
 *   one_hot(idx i32[...]) {depth, dtype=f32} -> [..., depth]
 *   gather(x[..., C], idx i32[...]) -> [...]: x[..., idx]
 * Composites (decomposed into primitives by passes/decompose.c)
 *   linear(x[N,K], w[O,K], b[O]?) -> x w^T + b
 *   batch_norm(x[N,C,...], gamma, beta, mean, var) {training, eps=1e-5}
 *   dropout(x, key) {p, training, stream}: inverted dropout
 *   softmax(x) / log_softmax(x) {axis}: max-subtracted, stable
 *   cross_entropy(logits[N,C], y i32[N]) {reduction=mean|sum|none}
 *   kl_div(p_logits[N,C], q_logits[N,C]) {reduction=mean, eps=0}: per row
 *     sum_c p_c (log p_c - log q_c), p = softmax(p_logits), q likewise; with
 *     eps > 0, log(q_c + eps) replaces log q_c (MART's form)
 *   cosine_similarity(a[N,...], b[N,...]) {eps=1e-8} -> [N]: per row of the
 *     flattened values, a.b / max(|a| |b|, eps); a zero row gives 0
 *   mart_bce(logits[N,C], y i32[N]) {reduction=mean}: CE(logits, y)
 *     - log(1.0001 - p_w + 1e-12), p_w the most probable wrong class's prob.
 *   pearson(a[N,...], b[N,...]) -> [N]: per-row Pearson correlation
 *   batch_norm's {groups=1} splits the batch into that many consecutive
 *     groups with their own training statistics (IG path points); its
 *     {ranks=1} takes training statistics over that many data-parallel
 *     ranks' rows (rank_sum of the sums; train.sync_bn)
 *   Activations (elementwise, PyTorch's definitions; NaN propagates):
 *   gelu(x) {approximate="none"|"tanh"}: x Phi(x) = x (1 + erf(x / sqrt 2)) / 2,
 *     or x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2
 *   silu(x): x sigmoid(x)
 *   leaky_relu(x) {alpha=0.01}: x > 0 ? x : alpha x
 *   elu(x) {alpha=1}: x > 0 ? x : alpha (exp(x) - 1)
 * Control flow
 *   loop(carry, capture...) {body, trips}: carry = body(i, carry, capture...)
 *     for i = 0..trips-1; body is a function of the module whose inputs are,
 *     in order, i (i32 scalar), the carry, then the captures, and whose one
 *     output is the new carry. Not differentiable: wrap uses in stop_gradient.
 *   fused(x...) {body}: body(x...), body a function of the module whose
 *     inputs are, in order, the operands and whose one output is the
 *     result: a group of nodes the fuse pass (passes/fuse.c) made one
 *     kernel; it runs after autodiff, so it has no VJP.
 *   rank_sum(x): x summed over the ranks of a data-parallel job, the same
 *     on every rank (train.sync_bn's batch statistics); the identity in one
 *     process and in the interpreter. Its VJP is rank_sum of the cotangent.
 *     Never fused or folded: the program runs it as a ranksum step.
 * Higher-level (lowered by passes)
 *   grad(y, x): dy/dx for a float scalar y, by reverse-mode autodiff
 *     (passes/autodiff.c); the result is ordinary IR, so grad applies to it
 *     again for second and higher derivatives
 */
#ifndef IGRC_OPS_H
#define IGRC_OPS_H

#include <stdbool.h>

/* Fusion pattern kinds (TVM's): decide what may fuse with what. */
typedef enum {
    PK_ELEMWISE,  /* one output element from the same index of each input (also the
                     activation composites: their shape rule is the unary one) */
    PK_BROADCAST, /* like elementwise with some input axes repeated */
    PK_INJECTIVE, /* each output element reads one input element */
    PK_REDUCTION,
    PK_COMPLEX,   /* conv/matmul/pool: fusable epilogue, not prologue */
    PK_OPAQUE,    /* sources, other composites, higher-level nodes */
} PatternKind;

typedef enum {
    OC_SOURCE,    /* no inputs from the graph: input, param, constant, ... */
    OC_PRIMITIVE, /* has an interpreter kernel and (later) backend lowerings */
    OC_COMPOSITE, /* decomposed into primitives by a pass */
    OC_HIGHER,    /* lowered by its own pass (grad: autodiff) */
} OpClass;

/* One enumerator per op. Everything else about an op (name, arity, fusion
 * pattern, class, attribute schema, and each layer's rules) is its row in
 * its family's file under ops/ (docs/architecture.md, "Adding an op"); the
 * enumerators stay here, grouped by family, because C needs the enum in one
 * place. */
typedef enum {
    /* ops/sources.c */
    OP_INPUT, OP_PARAM, OP_CONSTANT, OP_IOTA, OP_RANDOM_UNIFORM, OP_RANDOM_NORMAL,
    OP_RANDOM_BERNOULLI,
    /* ops/elementwise.c */
    OP_NEG, OP_ABS, OP_SIGN, OP_EXP, OP_LOG, OP_SQRT, OP_RSQRT, OP_RECIP, OP_RELU, OP_SIGMOID,
    OP_TANH, OP_SOFTPLUS, OP_ERF, OP_NOT, OP_CAST, OP_STOP_GRADIENT, OP_ADD, OP_SUB, OP_MUL,
    OP_DIV, OP_MAX, OP_MIN, OP_POW, OP_AND, OP_OR, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE,
    OP_SELECT,
    /* ops/layout.c */
    OP_BROADCAST, OP_RESHAPE, OP_TRANSPOSE, OP_SLICE, OP_CONCAT, OP_PAD,
    /* ops/reduce.c */
    OP_REDUCE_SUM, OP_REDUCE_MAX, OP_ARGMAX,
    /* ops/linalg.c */
    OP_MATMUL, OP_CONV2D, OP_CONV2D_BWD_DATA, OP_CONV2D_BWD_FILTER,
    /* ops/pool.c */
    OP_MAXPOOL2D, OP_MAXPOOL2D_BWD, OP_MAXPOOL2D_SELECT, OP_AVGPOOL2D, OP_AVGPOOL2D_BWD,
    /* ops/indexing.c */
    OP_ONE_HOT, OP_GATHER,
    /* ops/composites.c */
    OP_LINEAR, OP_BATCH_NORM, OP_DROPOUT, OP_SOFTMAX, OP_LOG_SOFTMAX, OP_CROSS_ENTROPY, OP_KL_DIV,
    OP_COSINE_SIMILARITY, OP_MART_BCE, OP_PEARSON, OP_GELU, OP_SILU, OP_LEAKY_RELU, OP_ELU,
    /* ops/control.c */
    OP_LOOP, OP_FUSED, OP_GRAD, OP_RANK_SUM,
    OP_COUNT
} OpKind;

/* Attribute schema: what the verifier and the frontend check. */
typedef enum { AK_INT, AK_FLOAT, AK_INTS, AK_FLOATS, AK_STR, AK_DTYPE } AttrSpecKind;

typedef struct {
    const char *key;
    AttrSpecKind kind;
    bool required;
    int count;       /* for lists: exact length, 0 = any, -1 = operand rank */
    double lo, hi;   /* allowed range of numbers (each element of a list) */
} AttrSpec;

/* An op's row in the IR layer's part of its family file (ir/op_rows.h). */
typedef struct {
    const char *name;
    int min_inputs, max_inputs; /* max -1: variadic */
    PatternKind pattern;
    OpClass cls;
    const AttrSpec *attrs;      /* terminated by a NULL key */
} OpInfo;

const OpInfo *op_info(OpKind op);
const char *op_name(OpKind op);
/* Looks up an op by name; returns false if unknown. */
bool op_lookup(const char *name, OpKind *out);
/* The known op name closest to name (edit distance), for "did you mean". */
const char *op_closest(const char *name);
const char *pattern_name(PatternKind p);

#endif
