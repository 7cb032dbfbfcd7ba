#define _POSIX_C_SOURCE 200809L /* posix_spawn */

#include "tests/common/spawn.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common/scratch.h"

extern char **environ;

const char *src_path(const char *rel) {
    static char buf[8][PATH_MAX];
    static int k;
    const char *src = getenv("IGRC_SOURCE_DIR");
    cr_assert(src, "IGRC_SOURCE_DIR is not set");
    char *p = buf[k++ % 8];
    snprintf(p, PATH_MAX, "%s/%s", src, rel);
    return p;
}

char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[got] = '\0';
    if (len) *len = got;
    return b;
}

const char *igrc_bin(void) {
    const char *bin = getenv("IGRC_BIN");
    cr_assert(bin, "IGRC_BIN is not set");
    return bin;
}

Result spawn_v(const char *bin, const char *const *args) {
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    for (; *args && n < 63; args++) argv[n++] = *args;
    argv[n] = NULL;
    static int calls;
    char out[600], err[600];
    snprintf(out, sizeof out, "%s/run%d.out", g_dir, calls);
    snprintf(err, sizeof err, "%s/run%d.err", g_dir, calls++);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int e = posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(e, 0, "cannot run %s: %s", bin, strerror(e));
    int status;
    while (waitpid(pid, &status, 0) < 0) cr_assert_eq(errno, EINTR);
    Result r = {.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)};
    r.out = slurp(out, NULL);
    r.err = slurp(err, NULL);
    unlink(out);
    unlink(err);
    if (strstr(r.err, "Sanitizer") || strstr(r.err, "runtime error:")) {
        fprintf(stderr, "%s %s: sanitizer report:\n%s\n", bin, argv[1] ? argv[1] : "", r.err);
        cr_expect_fail("sanitizer report from %s", bin);
    }
    cr_expect(WIFEXITED(status), "%s died of signal %d\nstderr: %s", bin, WTERMSIG(status), r.err);
    return r;
}

void result_free(Result *r) {
    free(r->out);
    free(r->err);
}

void result_ok(Result r, const char *what) {
    cr_assert_eq(r.rc, 0, "%s: exit %d\nstdout: %s\nstderr: %s", what, r.rc, r.out, r.err);
    result_free(&r);
}

cJSON *json_load(const char *path) {
    char *t = slurp(path, NULL);
    cJSON *j = cJSON_Parse(t);
    free(t);
    cr_assert(j, "%s is not JSON", path);
    return j;
}

double json_num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsNumber(v), "JSON lacks number '%s'", key);
    return v->valuedouble;
}

bool have_mnist(void) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", src_path("data/mnist"));
    char gz[PATH_MAX + 4];
    snprintf(gz, sizeof gz, "%s.gz", p);
    return access(p, R_OK) == 0 || access(gz, R_OK) == 0;
}

void mnist_env(void) {
    setenv("IGRC_DATA", src_path("data"), 1);
    setenv("IGRC_THREADS", "1", 1);
}
