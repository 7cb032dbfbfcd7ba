#define _POSIX_C_SOURCE 200809L
#include "runtime/io/outfile.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/rt_error.h"

static const char *kind_of(mode_t m) {
    return S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
         : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

bool outfile_target(const char *path, char *dst, size_t cap, char *err, size_t errcap) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) return rt_fail(err, errcap, "cannot write %s: %s", path, strerror(errno));
        snprintf(dst, cap, "%s", path); /* a new file */
        return true;
    }
    if (S_ISREG(st.st_mode)) {
        snprintf(dst, cap, "%s", path);
        return true;
    }
    if (!S_ISLNK(st.st_mode))
        return rt_fail(err, errcap, "cannot write %s: it is %s; refusing to replace it", path,
                       kind_of(st.st_mode));
    char real[PATH_MAX];
    if (!realpath(path, real))
        return rt_fail(err, errcap, "cannot write %s: a symbolic link to nothing (%s)", path,
                       strerror(errno));
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode))
        return rt_fail(err, errcap, "cannot write %s: it links to %s, which is %s; refusing to "
                       "replace it", path, real, kind_of(st.st_mode));
    if (strlen(real) >= cap) return rt_fail(err, errcap, "cannot write %s: path too long", path);
    snprintf(dst, cap, "%s", real);
    return true;
}

/* The pid of a NAME.tmp.<pid> entry for base NAME, or -1. */
static long tmp_pid(const char *entry, const char *base) {
    size_t n = strlen(base);
    if (strncmp(entry, base, n) || strncmp(entry + n, ".tmp.", 5)) return -1;
    const char *d = entry + n + 5;
    char *end;
    long pid = strtol(d, &end, 10);
    return *d && !*end && pid > 0 ? pid : -1;
}

int outfile_remove_stale(const char *path, FILE *note) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if (!dir[0]) snprintf(dir, sizeof dir, "/");
    DIR *dp = opendir(dir);
    if (!dp) return 0;
    int removed = 0;
    for (struct dirent *e; (e = readdir(dp));) {
        long pid = tmp_pid(e->d_name, base);
        if (pid < 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours */
        char full[PATH_MAX + 256];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        if (unlink(full) == 0) {
            removed++;
            if (note) fprintf(note, "note: removed %s, left by process %ld, which is gone\n", full, pid);
        }
    }
    closedir(dp);
    return removed;
}
