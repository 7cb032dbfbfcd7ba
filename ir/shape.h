/* Shape inference and the IR verifier. */
#ifndef IGRC_SHAPE_H
#define IGRC_SHAPE_H

#include "ir/ir.h"

/* Result type of node n (its operands are nodes of f). Source ops return
 * their declared type after checking it (param: against the module). */
bool shape_infer(const Module *m, const Function *f, const Node *n, Type *out, Diag *d);

/* Checks n's attributes against its op's schema: required keys present,
 * kinds and list lengths right, numbers in range, no unknown keys. */
bool attrs_check(const Module *m, const Function *f, const Node *n, Diag *d);

/* Structural and type checks of every function: operands defined before
 * use, arities, attribute schemas, declared types equal inferred types,
 * outputs valid. Every pass can run it (--verify-each). */
bool ir_verify(const Module *m, Diag *d);
bool ir_verify_function(const Module *m, const Function *f, Diag *d);

#endif
