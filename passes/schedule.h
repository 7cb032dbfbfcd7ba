/* Node scheduling for memory: passes/schedule.c. */
#ifndef IGRC_SCHEDULE_H
#define IGRC_SCHEDULE_H

#include <stdint.h>

#include "ir/ir.h"

/* Bytes of value v of f (elements times the dtype's size: f32/i32 4,
 * f64 8, bool 1). */
int64_t schedule_value_bytes(const Function *f, int v);

/* The peak of live bytes when f's nodes run in their current order. A value
 * lives from its definition to its last use; function inputs and params
 * count from the start (an unused, non-output one not at all); outputs live
 * to the end. A node's operands and its result are live together while it
 * runs. */
int64_t schedule_peak_bytes(const Function *f);

#endif
