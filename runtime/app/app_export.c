/* `export`: a run's weights alone (no optimiser state), for PyTorch's
 * model.load_state_dict(safetensors.torch.load_file(FILE), strict=True). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "runtime/app/app_internal.h"
#include "runtime/io/checkpoint.h"

int app_export(const AppCtx *ctx, int argc, char **argv) {
    const char *ckpt = NULL, *out = "run", *to = NULL;
    char ckbuf[1100], tobuf[1100], err[2048];
    AppOpt opts[] = {
        APP_WEIGHTS_OPTS(&ckpt, &out),
        {"to", OPT_STR, &to, "FILE", "where the weights go (default: DIR/weights.safetensors; "
                                     "--out FILE.safetensors also names it)", 0},
    };
    int rc = app_parse("export",
                       "Writes the weights alone (trainable parameters and batch-norm statistics, "
                       "no optimiser state)\nas safetensors that PyTorch's load_state_dict takes.",
                       argc, argv, opts, (int)(sizeof opts / sizeof *opts));
    if (rc) return rc == APP_HELP ? APP_OK : rc;
    /* --out W.safetensors names the file (the weights of ./run unless
     * --ckpt); --out DIR the run directory, as in every other command. */
    size_t n = strlen(out), ext = strlen(".safetensors");
    if (!to && n > ext && !strcmp(out + n - ext, ".safetensors")) to = out, out = "run";
    app_default_path(&ckpt, ckbuf, sizeof ckbuf, out, "checkpoint.safetensors");
    app_default_path(&to, tobuf, sizeof tobuf, out, "weights.safetensors");
    if (!strcmp(ckpt, to)) {
        fprintf(stderr, "error: --to %s would overwrite the checkpoint it exports\n", to);
        return APP_USAGE;
    }
    Exec *e = app_exec_new(ctx, backend_find("cpu"), 1, 0);
    if (!e) return APP_FAIL;
    CkptInfo info;
    rc = APP_OK;
    if (!ckpt_load(ckpt, e, WEIGHTS_ONLY, &info, stderr, err, sizeof err)) {
        fprintf(stderr, "error: %s%s\n", err,
                opts[0].seen ? "" : " (train first, or name the weights with --ckpt FILE)");
        rc = APP_FAIL;
    } else if (!ckpt_export(to, e, &info, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        rc = APP_FAIL;
    } else {
        printf("wrote %s: the weights of %s (step %" PRId64 ") from %s\n", to,
               ctx->p->name, info.step, ckpt);
    }
    exec_free(e);
    return rc;
}
