/* Linking generated objects with the system C compiler. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/cpu/llvm_backend.h"

extern char **environ;

/* $CC split at spaces ("ccache gcc" works), else "cc". Returns the count;
 * the words point into *store, which the caller frees. */
static int compiler_words(char **store, const char **words, int cap) {
    const char *cc = getenv("CC");
    *store = strdup(cc && *cc ? cc : "cc");
    if (!*store) abort();
    int n = 0;
    for (char *p = strtok(*store, " \t"); p && n < cap; p = strtok(NULL, " \t")) words[n++] = p;
    if (n == 0) words[n++] = "cc";
    return n;
}

/* Reads everything the child writes, keeping the first cap - 1 bytes. */
static void drain(int fd, char *buf, size_t cap) {
    size_t len = 0;
    char tmp[4096];
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        size_t take = (size_t)r < cap - 1 - len ? (size_t)r : cap - 1 - len;
        memcpy(buf + len, tmp, take);
        len += take;
    }
    buf[len] = '\0';
}

static bool spawn_wait(const char *const *argv, Diag *d) {
    int fds[2];
    if (pipe(fds) != 0) return diag_error(d, EXIT_RUNTIME, "cpu_link: pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    char out[3000];
    if (rc == 0) drain(fds[0], out, sizeof out);
    close(fds[0]);
    if (rc != 0) return diag_error(d, EXIT_RUNTIME, "cpu_link: cannot run %s: %s", argv[0], strerror(rc));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return diag_error(d, EXIT_RUNTIME, "cpu_link: waitpid: %s", strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return true;
    return diag_error(d, EXIT_RUNTIME, "cpu_link: %s failed (status %d): %s", argv[0],
                      WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
}

/* A file name the compiler driver cannot take for an option: "-X.o" is
 * passed as "./-X.o" (malloc'd when changed, recorded in *owned). */
static const char *as_file(const char *path, char **owned) {
    *owned = NULL;
    if (path[0] != '-') return path;
    size_t n = strlen(path) + 3;
    *owned = malloc(n);
    if (!*owned) abort();
    snprintf(*owned, n, "./%s", path);
    return *owned;
}

typedef enum { LINK_EXECUTABLE, LINK_SHARED, LINK_RELOCATABLE } LinkMode;

static bool link_objects(LinkMode mode, const char *const *objects, int nobj, const char *out,
                         const char *const *extra, int nextra, Diag *d) {
    if (nobj < 0 || nextra < 0 || !out) return diag_error(d, EXIT_RUNTIME, "cpu_link: bad arguments");
    size_t cap = (size_t)nobj + (size_t)nextra + 24;
    const char **argv = calloc(cap, sizeof *argv);
    char **owned = calloc((size_t)nobj + 2, sizeof *owned);
    if (!argv || !owned) abort();
    char *store;
    int n = compiler_words(&store, argv, 16);
    if (mode == LINK_SHARED) argv[n++] = "-shared";
    if (mode == LINK_RELOCATABLE) argv[n++] = "-r", argv[n++] = "-nostdlib";
    argv[n++] = "-o";
    argv[n++] = as_file(out, &owned[nobj]);
    for (int i = 0; i < nobj; i++) argv[n++] = as_file(objects[i], &owned[i]);
    for (int i = 0; i < nextra; i++) argv[n++] = extra[i];
    if (mode != LINK_RELOCATABLE) argv[n++] = "-lm";
    argv[n] = NULL;
    bool ok = spawn_wait(argv, d);
    for (int i = 0; i <= nobj; i++) free(owned[i]);
    free(owned);
    free(store);
    free(argv);
    return ok;
}

bool cpu_link(const char *const *objects, int nobj, const char *out, bool shared,
              const char *const *extra, int nextra, Diag *d) {
    return link_objects(shared ? LINK_SHARED : LINK_EXECUTABLE, objects, nobj, out, extra, nextra, d);
}

bool cpu_link_relocatable(const char *const *objects, int nobj, const char *out, Diag *d) {
    return link_objects(LINK_RELOCATABLE, objects, nobj, out, NULL, 0, d);
}
