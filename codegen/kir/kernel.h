/* The kernel IR: what one fused group of the tensor IR becomes, and what
 * every backend renders (codegen/cpu to LLVM IR, codegen/cuda to CUDA C).
 *
 * A kernel computes the elements [begin, end) of a one-dimensional parallel
 * domain of `domain` elements; the runtime splits the domain over threads
 * (CPU) or blocks (CUDA). Its body is straight-line SSA code: an array of
 * instructions whose index is their value id, run once per domain element
 * with the element's index available as KI_INDEX. A reduction is a nested
 * loop written as a bracket KI_RED_BEGIN ... KI_RED_END; a value defined
 * inside a bracket is used only inside it (before its KI_RED_END).
 *
 * ABI, the same for every backend and every kernel:
 *     void NAME(void *const *bufs, int64_t begin, int64_t end);
 * bufs[i] points at buffer i's first element. Element storage: f32 float,
 * f64 double, i32 int32_t, i64 int64_t, bool one byte holding 0 or 1.
 *
 * The instructions are primitives: every backend spells each in a line or
 * two. The tensor IR's compound math (sigmoid, softplus, log1p, tanh and erf
 * in double for f32, NaN-aware max/min, sign, relu, C's integer division,
 * float -> i32 casts, Philox 4x32-10 and Box-Muller) is expanded into them
 * once, by codegen/lower_math.c, so the renderers never see it.
 *
 * Primitive semantics. Float ops are IEEE in the value's type (f32 in f32);
 * exp log sqrt tanh erf cos pow are the target's math library at that type;
 * trunc rounds toward zero. Integer add/sub/mul/neg wrap modulo 2^width;
 * integer div truncates toward zero and requires a divisor that is neither
 * 0 nor (for the minimum) -1 -- the lowering makes it so. and/or/xor are
 * bitwise (on bool: logical); shr is a logical shift right by 0..width-1.
 * Comparisons are C's (false with NaN except ne). cast: float <-> float
 * rounds once; int -> float rounds once; int -> int truncates (wraps) or
 * sign-extends, bool -> int gives 0/1; float -> int only for values that are
 * integers in the target's range (the lowering guarantees it); nothing casts
 * to bool (that is ne x, 0). Index arithmetic (i64) uses KI_IDIV / KI_IMOD
 * on non-negative operands.
 */
#ifndef IGRC_CODEGEN_KERNEL_H
#define IGRC_CODEGEN_KERNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ir/ir.h"

typedef enum { KT_F32, KT_F64, KT_I32, KT_I64, KT_BOOL, KT_COUNT } KType;

/* The primitive operations of KI_UNARY and KI_BINARY. */
#define KIR_OPS(X)                                                       \
    /* unary */                                                          \
    X(NEG, "neg") X(ABS, "abs") X(EXP, "exp") X(LOG, "log")              \
    X(SQRT, "sqrt") X(TANH, "tanh") X(ERF, "erf") X(COS, "cos")          \
    X(TRUNC, "trunc")                                                    \
    /* binary, result of the operands' type */                          \
    X(ADD, "add") X(SUB, "sub") X(MUL, "mul") X(DIV, "div")              \
    X(POW, "pow") X(AND, "and") X(OR, "or") X(XOR, "xor") X(SHR, "shr")  \
    /* binary, result bool */                                            \
    X(EQ, "eq") X(NE, "ne") X(LT, "lt") X(LE, "le") X(GT, "gt") X(GE, "ge")

typedef enum {
#define KIR_OP_ENUM(e, name) KO_##e,
    KIR_OPS(KIR_OP_ENUM)
#undef KIR_OP_ENUM
    KO_COUNT
} KOp;

#define KO_LAST_UNARY KO_TRUNC

typedef enum {
    KI_INDEX,     /* i64: the domain element being computed */
    KI_CONST,     /* f for float types, i for integer and bool types */
    KI_LOAD,      /* bufs[buf][a]; a is i64; type = the buffer's */
    KI_STORE,     /* bufs[buf][a] = b; no value */
    KI_UNARY,     /* op(a), op one of NEG ... TRUNC (type = a's) */
    KI_BINARY,    /* op(a, b), op one of ADD ... SHR (type = operands') or
                     EQ ... GE (type bool) */
    KI_IDIV,      /* i64 a / b, both >= 0 */
    KI_IMOD,      /* i64 a % b, both >= 0 */
    KI_SELECT,    /* a (bool) ? b : c */
    KI_CAST,      /* a converted to type */
    KI_RED_BEGIN, /* opens a loop r = 0 .. i-1; the value is r (i64) */
    KI_RED_END,   /* a = the matching KI_RED_BEGIN, b = the value of this
                     iteration; the value is the reduction of b over r:
                     red SUM (0 + ...), MAX (first -inf, NaN propagates as
                     in max), ARGMAX (i32: the first r whose b is maximal;
                     a NaN b counts as maximal, the first NaN wins) */
    KI_COUNT
} KInstKind;

typedef enum { KR_SUM, KR_MAX, KR_ARGMAX } KReduce;

typedef struct {
    KInstKind kind;
    KType type;       /* the value's type (KI_STORE: the stored type) */
    KOp op;           /* KI_UNARY / KI_BINARY */
    KReduce red;      /* KI_RED_END */
    int a, b, c;      /* operand value ids, -1 when unused */
    int buf;          /* KI_LOAD / KI_STORE */
    int64_t i;        /* integer constant, loop extent */
    double f;         /* float constant */
} KInst;

typedef struct {
    KType type;
    bool written;     /* stored to by the kernel (an output) */
    int64_t numel;    /* elements, for bounds checks in tests and dumps
                         (not part of the code: see kernel_same) */
    const char *name; /* the IR value it holds, for dumps */
} KBuf;

typedef struct {
    char *name;       /* a C identifier: "k12_conv1_relu1" names graph nodes */
    char *comment;    /* the IR nodes it was made from, for dumps */
    int64_t domain;   /* elements of the launch it was lowered for (dumps,
                         tests); not part of the code: see kernel_same */
    KBuf *bufs;
    int nbufs, bufcap;
    KInst *insts;
    int ninsts, instcap;
} KernelDef;

const char *ktype_name(KType t);
const char *kop_name(KOp op);
bool kop_is_compare(KOp op);
KType ktype_of(DType t);
size_t ktype_size(KType t); /* bytes of one element in a buffer */

/* Building. Every builder returns the new value id. */
KernelDef *kernel_new(const char *name, int64_t domain);
void kernel_free(KernelDef *k);
void kernel_set_comment(KernelDef *k, const char *comment);
int kernel_add_buf(KernelDef *k, KType t, int64_t numel, bool written, const char *name);
int k_index(KernelDef *k);
int k_const_f(KernelDef *k, KType t, double v);
int k_const_i(KernelDef *k, KType t, int64_t v);
int k_load(KernelDef *k, int buf, int index);
void k_store(KernelDef *k, int buf, int index, int value);
int k_unary(KernelDef *k, KOp op, int a);
int k_binary(KernelDef *k, KOp op, int a, int b);
int k_idiv(KernelDef *k, int a, int b);
int k_imod(KernelDef *k, int a, int b);
int k_select(KernelDef *k, int cond, int a, int b);
int k_cast(KernelDef *k, KType to, int a);
int k_red_begin(KernelDef *k, int64_t extent);
int k_red_end(KernelDef *k, KReduce red, int begin, int value);

/* Checks operand ids, types, bracket nesting and scoping, buffer use;
 * false with a message naming the kernel and instruction. */
bool kernel_verify(const KernelDef *k, Diag *d);
/* Text form for dumps (kernels/<name>.k): one instruction a line. */
void kernel_print(const KernelDef *k, FILE *out);
/* Hash and equality of the compiled code: names, comments, the domain and
 * the buffers' sizes are ignored, since no renderer reads them (the ABI
 * passes [begin, end), and a program step carries its own domain). Kernels
 * equal under it are compiled once: IG path points, PGD iterations, and the
 * same row-wise group at several batch sizes (train, IG path, attack). */
uint64_t kernel_hash(const KernelDef *k);
bool kernel_same(const KernelDef *a, const KernelDef *b);

/* Reference evaluator for the kernel IR (the oracle the renderers are
 * tested against): runs elements [begin, end) on host buffers. */
bool kernel_eval(const KernelDef *k, void *const *bufs, int64_t begin, int64_t end, Diag *d);

#endif
