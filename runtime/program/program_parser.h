/* The parser of the program text form, shared by its two files:
 * runtime/program/program_fields.c reads the fields of a line (tokens, numbers,
 * dtypes, dims, buffer references) and reports errors with the line number;
 * runtime/program/program_parse.c reads the lines and checks the whole program.
 * Internal to those two files. */
#ifndef IGRC_RUNTIME_PROGRAM_PARSER_H
#define IGRC_RUNTIME_PROGRAM_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/program/program.h"

typedef struct {
    int func, step, line;
    char *name; /* the body's name until resolved */
} PendingLoop;

typedef struct {
    Program *p;
    int nkernels;
    char *err;
    size_t errcap;
    int line;
    /* capacities of the Program's arrays */
    int cap_params, cap_inputs, cap_settings, cap_consts, cap_funcs;
    int cap_fin, cap_fout, cap_steps; /* of the function being read */
    PendingLoop *loops;
    int nloops, cap_loops;
    int *loop_lines; /* per func: the line of its func keyword */
    int cap_lines;
    char **tok;
    int ntok, cap_tok;
} Parser;

/* Grows arr (n used, *cap allocated, elements of elem bytes) for one more
 * element, zeroing the new room; NULL when out of memory (arr kept). */
void *pf_grow(void *arr, int n, int *cap, size_t elem);
char *pf_dupstr(const char *s);
/* a * b for sizes: false when negative or past INT64_MAX. */
bool pf_mul_ok(int64_t a, int64_t b, int64_t *out);
/* Writes "program:LINE: message" into the caller's error buffer; false. */
bool pf_fail(Parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline bool pf_oom(Parser *ps) { return pf_fail(ps, "out of memory"); }
static inline bool pf_is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }
/* Splits line (modified in place) into blank-separated tokens. */
bool pf_tokenize(Parser *ps, char *line);
/* A name: printable ASCII without blanks, '#', '"' or '\'. */
bool pf_check_name(Parser *ps, const char *what, const char *s);
/* Decimal integers in [lo, hi] and numbers (strtod's forms); what names the
 * field in the error. */
bool pf_parse_i64(Parser *ps, const char *what, const char *s, int64_t lo, int64_t hi,
                  int64_t *out);
bool pf_parse_num(Parser *ps, const char *what, const char *s, double *out);
bool pf_parse_dtype(Parser *ps, const char *s, PDtype *out);
/* [d0,d1,...] with no blanks; [] for a scalar. */
bool pf_parse_dims(Parser *ps, const char *s, PTensor *t);
/* NAME DTYPE [dims] starting at token k. */
bool pf_parse_tensor(Parser *ps, const char *what, int k, PTensor *t);
/* The line has exactly n tokens; form shows the expected line in the error. */
bool pf_want_tokens(Parser *ps, int n, const char *form);
const char *pf_space_name(PBufSpace s);
/* a<offset> p<k> i<k> o<k> c<k>. */
bool pf_parse_ref(Parser *ps, const char *s, PRef *r);
/* The size in bytes of what r names in function f, or -1 when unknown
 * (arena values). */
int64_t pf_ref_size(const Program *p, const PFunc *f, PRef r);
/* Checks r in function f: index in range, bytes (when >= 0) fit what it
 * names; writable refuses inputs and constants. what names the step. */
bool pf_check_ref(Parser *ps, const PFunc *f, PRef r, int64_t bytes, bool writable,
                  const char *what);
/* Parses and checks refs tok[k..ntok) into a new array. */
bool pf_parse_refs(Parser *ps, int k, PStep *s);

#endif
