/* The reference interpreter: the oracle every pass and backend is checked
 * against. Plain loops over row-major buffers, obviously correct, slow.
 *
 * Every value is held as doubles whatever its dtype (i32 and bool are exact
 * in a double). Precision INTERP_F32 rounds each f32-typed result to float
 * after every op (storage in f32, arithmetic in f64); INTERP_F64 keeps f32
 * values at double precision, which is what gradient checks want.
 */
#ifndef IGRC_INTERP_H
#define IGRC_INTERP_H

#include "ir/ir.h"

typedef struct {
    Type type;
    double *data; /* type_numel(&type) elements, malloc'd */
} Value;

typedef struct {
    const char *name; /* borrowed */
    Type type;
    double *data;
} NamedValue;

typedef enum { INTERP_F32, INTERP_F64 } InterpPrecision;

typedef struct {
    InterpPrecision precision;
} InterpOptions;

/* Runs function f of module m. Inputs bind `input` nodes by value name,
 * params bind `param` nodes by their `ref` (module parameter name); the
 * types must match the nodes' (dtype f32/f64 are interchangeable). On
 * success *outputs holds f->noutputs values, in order, named as the
 * function's outputs; free them with named_values_free. A loop node runs
 * its body, a function of m, binding the body's inputs by position (in
 * node order: trip index, carry, captures) and its params from the same
 * list as the caller's. */
bool interp_run(const Module *m, const Function *f, const InterpOptions *opt,
                const NamedValue *inputs, int ninputs, const NamedValue *params,
                int nparams, NamedValue **outputs, int *noutputs, Diag *d);

/* Evaluates one primitive node on given operand values (used by tests and
 * by backends' conformance checks). out->data is allocated here. A loop
 * needs its module: only interp_run runs it. */
bool interp_eval_node(const Node *n, const Value *ins, Value *out,
                      const InterpOptions *opt, Diag *d);

void value_free(Value *v);
void named_values_free(NamedValue *v, int n);

#endif
