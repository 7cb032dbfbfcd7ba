/* Schedule: reorders each function's nodes to lower the peak of live bytes
 * (schedule.h defines the measure). Names, types, attributes and outputs
 * are unchanged; only the order moves.
 *
 * A greedy list scheduler: `input` nodes come first in their original
 * order (a loop body binds its inputs by position). Nodes without operands
 * (param, constant, iota) are placed lazily, right before their first user.
 * Among the ready nodes it takes the one whose run leaves the fewest extra
 * bytes live: its result (and lazily placed operands that stay live) minus
 * the operands it is the last user of; ties go to the lowest original id,
 * so the result is deterministic. The new order is kept only when its peak
 * is strictly lower than the original order's. */
#include <stdlib.h>

#include "passes/pass.h"
#include "passes/rewrite.h"
#include "passes/schedule.h"

static int dtype_bytes(DType t) {
    switch (t) {
    case DT_F64: return 8;
    case DT_BOOL: return 1;
    case DT_F32:
    case DT_I32:
    case DT_COUNT: break;
    }
    return 4;
}

int64_t schedule_value_bytes(const Function *f, int v) {
    const Type *t = &f->nodes[v].type;
    return type_numel(t) * dtype_bytes(t->dtype);
}

/* Counted from the start of the function: inputs and params. */
static bool early(const Function *f, int v) {
    return f->nodes[v].op == OP_INPUT || f->nodes[v].op == OP_PARAM;
}

/* Peak live bytes of f under order (position -> node id). */
static int64_t peak_of(const Function *f, const int *order) {
    int n = f->n;
    int *pos = malloc(sizeof(int) * ((size_t)n + 1));
    int *last = malloc(sizeof(int) * ((size_t)n + 1));
    int *head = malloc(sizeof(int) * ((size_t)n + 1));
    int *next = malloc(sizeof(int) * ((size_t)n + 1));
    for (int s = 0; s < n; s++) pos[order[s]] = s;
    for (int v = 0; v < n; v++) last[v] = -1, head[v] = -1;
    for (int c = 0; c < n; c++)
        for (int i = 0; i < f->nodes[c].ninputs; i++) {
            int v = f->nodes[c].inputs[i];
            if (pos[c] > last[v]) last[v] = pos[c];
        }
    for (int i = 0; i < f->noutputs; i++) last[f->outputs[i].value] = n; /* never freed */
    int64_t cur = 0;
    for (int v = 0; v < n; v++) {
        int die = last[v];
        if (early(f, v)) {
            if (die < 0) continue; /* unused: never live */
            cur += schedule_value_bytes(f, v);
        } else if (die < 0) {
            die = pos[v]; /* unused: freed right after it is made */
        }
        if (die < n) next[v] = head[die], head[die] = v;
    }
    int64_t peak = cur;
    for (int s = 0; s < n; s++) {
        int id = order[s];
        if (!early(f, id)) cur += schedule_value_bytes(f, id);
        if (cur > peak) peak = cur;
        for (int v = head[s]; v >= 0; v = next[v]) cur -= schedule_value_bytes(f, v);
    }
    free(pos);
    free(last);
    free(head);
    free(next);
    return peak;
}

int64_t schedule_peak_bytes(const Function *f) {
    int *order = malloc(sizeof(int) * ((size_t)f->n + 1));
    for (int i = 0; i < f->n; i++) order[i] = i;
    int64_t p = peak_of(f, order);
    free(order);
    return p;
}

typedef struct {
    const Function *f;
    int *order, norder;
    bool *done, *is_out;
    int *users_left;  /* operand edges from nodes not yet placed */
    int *pending;     /* operand edges to non-lazy values not yet placed */
    int *cstart, *cons; /* consumers (one entry per operand edge), CSR */
    int *ready, nready;
} Sched;

/* Placed right before its first user. */
static bool lazy(const Function *f, int v) {
    return f->nodes[v].ninputs == 0 && f->nodes[v].op != OP_INPUT;
}

/* Edges from node c to operand v. */
static int edges(const Node *c, int v) {
    int k = 0;
    for (int i = 0; i < c->ninputs; i++) k += c->inputs[i] == v;
    return k;
}

static bool first_edge(const Node *c, int i) {
    for (int j = 0; j < i; j++)
        if (c->inputs[j] == c->inputs[i]) return false;
    return true;
}

/* Bytes left live after placing c, minus bytes it frees. */
static int64_t score(const Sched *s, int c) {
    const Function *f = s->f;
    const Node *n = &f->nodes[c];
    bool used = s->cstart[c + 1] > s->cstart[c] || s->is_out[c];
    int64_t delta = used ? schedule_value_bytes(f, c) : 0;
    for (int i = 0; i < n->ninputs; i++) {
        int v = n->inputs[i];
        if (!first_edge(n, i)) continue;
        bool last = s->users_left[v] == edges(n, v) && !s->is_out[v];
        if (lazy(f, v) && !s->done[v] && !early(f, v)) {
            if (!last) delta += schedule_value_bytes(f, v);
        } else if (last) {
            delta -= schedule_value_bytes(f, v);
        }
    }
    return delta;
}

static void place(Sched *s, int v) {
    s->done[v] = true;
    s->order[s->norder++] = v;
    const Node *n = &s->f->nodes[v];
    for (int i = 0; i < n->ninputs; i++) s->users_left[n->inputs[i]]--;
    if (lazy(s->f, v) || n->op == OP_INPUT) return; /* users never waited for it */
    for (int k = s->cstart[v]; k < s->cstart[v + 1]; k++)
        if (--s->pending[s->cons[k]] == 0) s->ready[s->nready++] = s->cons[k];
}

static void greedy_order(const Function *f, int *order) {
    int n = f->n;
    Sched s = {.f = f, .order = order};
    s.done = calloc((size_t)n + 1, sizeof(bool));
    s.is_out = calloc((size_t)n + 1, sizeof(bool));
    s.users_left = calloc((size_t)n + 1, sizeof(int));
    s.pending = calloc((size_t)n + 1, sizeof(int));
    s.cstart = calloc((size_t)n + 2, sizeof(int));
    s.ready = malloc(sizeof(int) * ((size_t)n + 1));
    for (int i = 0; i < f->noutputs; i++) s.is_out[f->outputs[i].value] = true;
    int nedges = 0;
    for (int c = 0; c < n; c++)
        for (int i = 0; i < f->nodes[c].ninputs; i++) {
            int v = f->nodes[c].inputs[i];
            s.users_left[v]++;
            s.cstart[v + 1]++;
            nedges++;
            if (!lazy(f, v) && f->nodes[v].op != OP_INPUT) s.pending[c]++;
        }
    for (int v = 0; v < n; v++) s.cstart[v + 1] += s.cstart[v];
    s.cons = malloc(sizeof(int) * ((size_t)nedges + 1));
    int *fill = malloc(sizeof(int) * ((size_t)n + 1));
    for (int v = 0; v < n; v++) fill[v] = s.cstart[v];
    for (int c = 0; c < n; c++)
        for (int i = 0; i < f->nodes[c].ninputs; i++) s.cons[fill[f->nodes[c].inputs[i]]++] = c;
    free(fill);

    for (int v = 0; v < n; v++)
        if (f->nodes[v].op == OP_INPUT) place(&s, v);
    for (int v = 0; v < n; v++)
        if (!lazy(f, v) && f->nodes[v].op != OP_INPUT && s.pending[v] == 0)
            s.ready[s.nready++] = v;
    while (s.nready > 0) {
        int best = 0;
        int64_t best_score = score(&s, s.ready[0]);
        for (int k = 1; k < s.nready; k++) {
            int64_t sc = score(&s, s.ready[k]);
            if (sc < best_score || (sc == best_score && s.ready[k] < s.ready[best]))
                best = k, best_score = sc;
        }
        int c = s.ready[best];
        s.ready[best] = s.ready[--s.nready];
        const Node *cn = &f->nodes[c];
        for (int i = 0; i < cn->ninputs; i++)
            if (!s.done[cn->inputs[i]]) place(&s, cn->inputs[i]); /* lazy operands */
        place(&s, c);
    }
    for (int v = 0; v < n; v++) /* sources without users */
        if (!s.done[v]) place(&s, v);
    free(s.done);
    free(s.is_out);
    free(s.users_left);
    free(s.pending);
    free(s.cstart);
    free(s.cons);
    free(s.ready);
}

static bool schedule_function(Module *m, Function *f, Diag *d) {
    if (f->n < 2) return true;
    int *order = malloc(sizeof(int) * ((size_t)f->n + 1));
    greedy_order(f, order);
    bool better = peak_of(f, order) < schedule_peak_bytes(f);
    if (!better) {
        free(order);
        return true;
    }
    Rewriter rw;
    rw_begin(&rw, m, f, d);
    for (int k = 0; k < f->n; k++) rw_copy(&rw, order[k]);
    free(order);
    return rw_finish(&rw);
}

bool pass_schedule(Module *m, PassCtx *ctx) {
    for (int i = 0; i < m->nfuncs; i++)
        if (!schedule_function(m, m->funcs[i], ctx->d)) return false;
    return true;
}
