/* Lowering a fused body (passes/fuse.c) to the kernel IR: the body's output
 * is computed element by element, each operand read at the index its view
 * chain maps the element to (broadcast, transpose, reshape, slice, pad and
 * concat become index arithmetic; nothing is materialised in between). */
#ifndef IGRC_CODEGEN_LOWER_H
#define IGRC_CODEGEN_LOWER_H

#include "codegen/kir/kernel.h"
#include "ir/ir.h"

/* The kernel for body function `body` (inputs in order, one output).
 * Buffers: 0 = the output, 1..k = the body's inputs in order, and, when
 * head_buf is true, k+1 = the result of the body's complex head node (the
 * library call the program runs before the kernel), read in its place.
 * NULL with a message naming the body and node on an unsupported op. */
KernelDef *lower_body(const Module *m, const Function *body, const char *kernel_name,
                      bool head_buf, Diag *d);

/* Is the body one concat of its inputs (passes/fuse.c makes wide concats
 * such groups)? Then it runs as parts of LOWER_CONCAT_PART operands each,
 * one kernel per part: every element loads at most that many operands. */
bool lower_is_concat_copy(const Function *body);
enum { LOWER_CONCAT_PART = 8 };

/* Part `part` (operands part*LOWER_CONCAT_PART...) of such a body, written
 * into its place in the output: domain = the part's elements; buffers
 * 0 = the output, 1..*nreads = body inputs, reads[] their ordinals among
 * the body's inputs (an operand given twice is one buffer). */
KernelDef *lower_concat_part(const Function *body, int part, const char *kernel_name, int *reads,
                             int *nreads, Diag *d);

/* The body's complex head (conv2d, matmul, pool ... as the group's first
 * op), or -1. */
int lower_find_head(const Function *body);

/* A C identifier from an IR name: "train_step.fused.z_adv:conv1" ->
 * "train_step_fused_z_adv_conv1"; written into buf (cap bytes). */
char *lower_c_name(const char *name, char *buf, size_t cap);

#endif
