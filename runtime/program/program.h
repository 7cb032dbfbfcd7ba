/* A compiled program: what `igrc compile` embeds in an executable and what
 * the runtime executes. Kernels are machine code (ABI in codegen/kernel.h:
 * void k(void *const *bufs, int64_t begin, int64_t end)); everything else
 * is described by a plain-text program (program_parse reads it, the
 * compiler's codegen writes it), readable in dumps as plan.txt:
 *
 *   program NAME batch B
 *   param NAME DTYPE [dims] init KIND A trainable|state
 *   input NAME DTYPE [dims] batched|fixed LO HI CLASSES
 *   setting KEY num V  |  setting KEY str "S"
 *   const ID DTYPE [dims] hex   (little-endian bytes as hex)
 *   func NAME arena BYTES
 *     in NAME DTYPE [dims]      (one per function input, in order)
 *     out NAME DTYPE [dims] REF (where the output's value lives)
 *     kernel K DOMAIN GRAIN REF... # label
 *     lib OP DTYPE arg... ; REF... # label
 *     copy BYTES DST SRC # label
 *     loop FUNC TRIPS CARRYBYTES OUTREF INITREF CAPTUREREF... # label
 *     reduce K REF # label
 *     ranksum DTYPE COUNT OUTREF INREF # label
 *   end
 * REF is a buffer: a<offset> (arena byte offset), p<index> (param), i<index>
 * (function input), o<index> (function output), c<index> (constant).
 * A loop runs function FUNC TRIPS times: its inputs are (i32 trip index,
 * carry, captures...), its one output the next carry; OUTREF holds the
 * final carry (INITREF is copied there first).
 * A reduce step says that output K's value is final at REF from here on:
 * the run's data-parallel reduction (runtime/app/train_dp.c, through
 * exec_set_reduce_hook) may take it while the later steps run; without a
 * hook it does nothing. The compiler puts one after each gradient of
 * train_grads, so the gradients of the last layers are on the wire while
 * the backward pass of the first ones still runs. A ranksum step writes
 * the sum over the job's ranks of COUNT floats at INREF to OUTREF (the IR's
 * rank_sum: train.sync_bn's batch statistics); in one process, a copy.
 *
 * Precisely (program_to_text writes exactly this canonical form, and
 * program_to_text(program_parse(t)) == t for canonical t):
 *   - one item per line, fields separated by one space, each line ending
 *     in '\n'; lines inside a func indented by two spaces; no blank lines
 *     (the parser also accepts blank lines and runs of blanks).
 *   - lines come in the order program, param*, input*, setting*, const*,
 *     func*; inside a func: in*, out*, steps*, then `end`.
 *   - NAME: printable ASCII without blanks, '#', '"' or '\'. Names of
 *     params, inputs, settings, consts and funcs are unique in their kind.
 *   - DTYPE: f32 f64 i32 i64 bool. dims: `[128,1,28,28]`, no blanks, `[]`
 *     for a scalar, at most PROG_MAX_RANK sizes >= 0.
 *   - integers in decimal; real numbers (init A, LO, HI, setting num) in the
 *     shortest %g spelling that reads back as the same double.
 *   - init KIND: zeros ones uniform normal (RtInitKind).
 *   - setting str: double quotes; escapes \\ \" \n \t \xHH.
 *   - const data: 2 lowercase hex digits per byte, exactly ptensor_bytes
 *     bytes; `-` for zero bytes. Constants are c0, c1... in line order.
 *   - steps may end in ` # label` (the label runs to the end of the line,
 *     surrounding blanks trimmed; no label, no '#').
 *   - kernel K (< nkernels) DOMAIN (>= 0) GRAIN (>= 1) then its buffers.
 *   - lib OP (cpu_op_name spelling) DTYPE (f32|f64) then exactly
 *     cpu_op_nargs args, ` ;`, then the buffers {out, in0[, in1]}; sizes
 *     follow from the args and must fit; out must not overlap an input.
 *   - loop FUNC names the body; FUNC has inputs (i32 scalar, carry of
 *     CARRYBYTES, one per capture) and one output of CARRYBYTES; loops may
 *     nest but not recurse; FUNC may be defined later in the text.
 *   - reduce K (< the func's outputs, an f32 or f64 one) REF (holding at
 *     least output K's bytes).
 *   - ranksum DTYPE (f32|f64) COUNT (>= 0) then OUT and IN, each holding
 *     COUNT elements; OUT is writable.
 *   - copy/lib/loop destinations may not be inputs or consts. An output's
 *     REF is o<own index> (the steps write the caller's buffer), or any
 *     other buffer holding at least its bytes (arena, param, input, const),
 *     copied into the caller's output after the steps.
 *   - byte sizes are checked wherever known; for kernel buffers (size not
 *     in the text) only that an arena offset is below the arena size.
 * Example:
 *   program mlp batch 32
 *   param w f32 [4,2] init uniform 0.5 trainable
 *   input x f32 [32,4] batched 0 1 10
 *   setting lr num 0.01
 *   setting opt str "sgd"
 *   const c f32 [2] 0000803f00000040
 *   func step arena 4096
 *     in x f32 [32,4]
 *     out y f32 [32,2] a0
 *     kernel 0 64 16 a256 i0 p0 c0 # add_3
 *     lib matmul f32 1 32 4 2 0 0 ; a0 i0 p0 # matmul_1
 *     copy 256 a512 a0 # reshape_2
 *     loop body 10 8 a1024 a1032 p0 # while_4
 *   end
 */
#ifndef IGRC_RUNTIME_PROGRAM_H
#define IGRC_RUNTIME_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { PD_F32, PD_F64, PD_I32, PD_I64, PD_BOOL } PDtype;

#define PROG_MAX_RANK 6

typedef struct {
    char *name;
    PDtype dtype;
    int rank;
    int64_t dim[PROG_MAX_RANK];
} PTensor;

typedef enum { PB_ARENA, PB_PARAM, PB_INPUT, PB_OUTPUT, PB_CONST } PBufSpace;

typedef struct {
    PBufSpace space;
    int64_t at; /* arena byte offset, or the index in its space */
} PRef;

typedef enum { PS_KERNEL, PS_LIB, PS_COPY, PS_LOOP, PS_REDUCE, PS_RANKSUM } PStepKind;

typedef struct {
    PStepKind kind;
    int index;       /* kernel: kernel table index; lib: CpuOp; loop: func;
                        reduce: the output */
    int dtype;       /* lib, ranksum: CpuDtype */
    int64_t domain;  /* kernel: elements; copy: bytes; loop: trips; ranksum: elements */
    int64_t grain;   /* kernel: min elements per task; loop: carry bytes */
    int nargs;
    int64_t args[16]; /* lib args */
    int nrefs;
    PRef *refs;      /* kernel: its buffers; lib: out, in...; copy: dst, src;
                        loop: out, init, captures...; reduce: the value;
                        ranksum: out, in */
    char *label;     /* the IR nodes it came from */
} PStep;

/* What a run's collective steps call (exec_set_collectives); a NULL
 * member leaves its steps to their one-process meaning. */
typedef struct {
    /* A reduce step: output `out` of func f is final, `bytes` at value
     * (valid and unchanged until the call returns). Without it: nothing. */
    void (*reduce)(void *ctx, int f, int out, const void *value, int64_t bytes);
    /* A ranksum step: the n floats (f64 when f64) at buf replaced by their
     * sum over the ranks, the same bits on every rank; blocks. Without it:
     * one rank, buf stays. */
    void (*rank_sum)(void *ctx, void *buf, int64_t n, bool f64);
    void *ctx;
} PCollectives;

/* The bytes a ranksum step reads and writes: COUNT elements of its dtype. */
int64_t pstep_ranksum_bytes(const PStep *s);

typedef struct {
    char *name;
    int64_t arena_bytes;
    int ninputs, noutputs, nsteps;
    PTensor *inputs, *outputs;
    PRef *out_refs;
    PStep *steps;
} PFunc;

typedef struct {
    PTensor t;
    int init_kind;   /* RtInitKind (runtime/program/init.h) */
    double init_a;
    bool trainable;
} PParam;

typedef struct {
    PTensor t;
    bool batched;
    double lo, hi;
    int classes;
} PInput;

typedef struct {
    char *key;
    bool is_str;
    double num;
    char *str;
} PSetting;

typedef struct {
    PTensor t;
    void *data;
} PConst;

typedef struct {
    char *name;
    int64_t batch;
    int nparams, ninputs, nsettings, nconsts, nfuncs;
    PParam *params;
    PInput *inputs;
    PSetting *settings;
    PConst *consts;
    PFunc *funcs;
} Program;

typedef void (*PKernelFn)(void *const *bufs, int64_t begin, int64_t end);

size_t pdtype_size(PDtype t);
const char *pdtype_name(PDtype t);
int64_t ptensor_numel(const PTensor *t);
size_t ptensor_bytes(const PTensor *t);

/* Text form (above). program_parse validates everything (references in
 * range of their spaces and sizes, kernel indices < nkernels, lib args via
 * cpu_op_check) and names the line at fault; NULL on error. */
Program *program_parse(const char *text, int nkernels, char *err, size_t errcap);
/* The PDtype spelled s ("f32" ...), or -1. */
int pdtype_from_name(const char *s);
/* The CpuOp spelled name (cpu_op_name's spelling, e.g. "conv2d"), or -1. */
int program_lib_op(const char *name);
char *program_to_text(const Program *p); /* malloc'd */
void program_free(Program *p);
int program_find_func(const Program *p, const char *name);
int program_find_param(const Program *p, const char *name);
const PSetting *program_setting(const Program *p, const char *key);

/* Fills dst (ptensor_bytes(&pp->t)) with pp's initial values from seed,
 * converted to its dtype: what every backend does at load. */
bool program_init_param(const PParam *pp, void *dst, uint32_t seed);

#endif
