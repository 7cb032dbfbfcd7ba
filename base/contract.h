/* The compiler-runtime contract: the entry points the frontend builds
 * (frontend/entry.c) and the executables call (runtime/app/app*.c), and the
 * names of their inputs and outputs. Both sides spell them through these
 * macros only, so a rename is one edit here, not a failure at run time.
 * Settings and their defaults have their own table (base/settings.h).
 *
 *   predict(x) -> logits
 *   ig(x, y) -> attributions                              IG, zero baseline
 *   attrib_step(x, y, mask) -> logits, attributions, dx   one IFIA step
 *     (eval.attack_batch rows), and attrib_step.<N> the same at every power
 *     of two N below it, so a remainder of images computes no padding rows
 *   activations(x) -> logits, pre                         every ReLU input
 *   objective(x, y, x_adv) -> loss, grad.<param>...
 *   train_step(x, y, lr, step, progress, key) -> loss, logits, <param>...
 *   train_grads(x, y, progress, key) -> loss, logits, grad.<param>...   one
 *     data-parallel micro-batch (train.micro_batch rows)
 *   train_apply(grad.<param>..., lr, step) -> <param>...   the optimiser step
 *   grad_ce(x, y), grad_cw(x, y) -> logits, dx             attack gradients
 *   grad_logits(x, dlogits) -> logits, dx                  dx = (dz/dx)^T dlogits */
#ifndef IGRC_BASE_CONTRACT_H
#define IGRC_BASE_CONTRACT_H

#define ENTRY_PREDICT "predict"
#define ENTRY_IG "ig"
#define ENTRY_ATTRIB_STEP "attrib_step"
#define ENTRY_ATTRIB_STEP_ROWS "attrib_step.%d" /* printf: the rows, a power of two */
#define ENTRY_ACTIVATIONS "activations"
#define ENTRY_OBJECTIVE "objective"
#define ENTRY_TRAIN_STEP "train_step"
#define ENTRY_TRAIN_GRADS "train_grads"
#define ENTRY_TRAIN_APPLY "train_apply"
#define ENTRY_GRAD_CE "grad_ce"
#define ENTRY_GRAD_CW "grad_cw"
#define ENTRY_GRAD_LOGITS "grad_logits"

#define IN_X "x"              /* images, f32 [B, ...] */
#define IN_Y "y"              /* labels, i32 [B] */
#define IN_X_ADV "x_adv"      /* objective's given adversarial images */
#define IN_MASK "mask"        /* attrib_step's top-k mask, x's shape */
#define IN_LR "lr"            /* train_step's learning rate, f32 scalar */
#define IN_STEP "step"        /* 1-based optimiser step, f32 scalar */
#define IN_PROGRESS "progress" /* epochs done, f32 scalar (IGR warm-up) */
#define IN_KEY "key"          /* random key, i32 [2]: (seed, step) */
#define IN_DLOGITS "dlogits"  /* grad_logits' cotangent, the logits' type [B, K] */

#define OUT_LOGITS "logits"
#define OUT_LOSS "loss"
#define OUT_ATTRIBUTIONS "attributions"
#define OUT_DX "dx"
#define OUT_GRAD_PREFIX "grad." /* train_grads' outputs and train_apply's inputs */
#define OUT_PRE "pre"

#endif
