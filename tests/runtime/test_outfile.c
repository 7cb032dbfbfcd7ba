/* Output files (runtime/outfile.c): what a writer may replace, and the
 * temporaries a killed writer leaves. Every writer (checkpoints, JSON,
 * PNG, igrc exec -o) goes through outfile_target; st_write is checked here
 * end to end on a FIFO and through a symbolic link. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/io/outfile.h"
#include "runtime/io/safetensors.h"
#include "tests/common/scratch.h"

TestSuite(outfile, .init = scratch_setup, .fini = scratch_teardown);

static void touch(const char *path) {
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s", path);
    fputs("old", f);
    fclose(f);
}

Test(outfile, targets_regular_files_and_links_to_them) {
    char dst[PATH_MAX], err[512], real[PATH_MAX];
    const char *fresh = in_dir("new.json");
    cr_assert(outfile_target(fresh, dst, sizeof dst, err, sizeof err), "%s", err);
    cr_expect_str_eq(dst, fresh);
    const char *reg = in_dir("reg.json");
    touch(reg);
    cr_assert(outfile_target(reg, dst, sizeof dst, err, sizeof err), "%s", err);
    cr_expect_str_eq(dst, reg);
    /* a link to a regular file: written through, the link kept */
    const char *link = in_dir("link.json");
    cr_assert_eq(symlink(reg, link), 0);
    cr_assert(outfile_target(link, dst, sizeof dst, err, sizeof err), "%s", err);
    cr_assert(realpath(reg, real));
    cr_expect_str_eq(dst, real);
}

Test(outfile, refuses_fifos_directories_and_dangling_links) {
    char dst[PATH_MAX], err[512];
    const char *fifo = in_dir("fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_expect_not(outfile_target(fifo, dst, sizeof dst, err, sizeof err));
    cr_expect(strstr(err, "fifo: it is a FIFO; refusing to replace it"), "%s", err);
    cr_expect_not(outfile_target(g_dir, dst, sizeof dst, err, sizeof err));
    cr_expect(strstr(err, "a directory"), "%s", err);
    const char *to_fifo = in_dir("to_fifo"), *dangling = in_dir("dangling");
    cr_assert_eq(symlink(fifo, to_fifo), 0);
    cr_expect_not(outfile_target(to_fifo, dst, sizeof dst, err, sizeof err));
    cr_expect(strstr(err, "a FIFO"), "%s", err);
    cr_assert_eq(symlink(in_dir("nothing"), dangling), 0);
    cr_expect_not(outfile_target(dangling, dst, sizeof dst, err, sizeof err));
    cr_expect(strstr(err, "a symbolic link to nothing"), "%s", err);
    if (access("/dev/null", W_OK) == 0) { /* as root this would once replace /dev/null */
        cr_expect_not(outfile_target("/dev/null", dst, sizeof dst, err, sizeof err));
        cr_expect(strstr(err, "a character device"), "%s", err);
    }
}

Test(outfile, st_write_keeps_fifos_and_links) {
    float v[2] = {1, 2};
    StTensor t = {.name = "w", .dtype = ST_F32, .rank = 1, .shape = {2}, .data = v, .nbytes = 8};
    char err[512];
    const char *fifo = in_dir("fifo.safetensors");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_expect_not(st_write(fifo, &t, 1, NULL, 0, err, sizeof err));
    struct stat st;
    cr_assert_eq(lstat(fifo, &st), 0);
    cr_expect(S_ISFIFO(st.st_mode), "the FIFO was replaced");
    const char *reg = in_dir("w.safetensors"), *link = in_dir("link.safetensors");
    touch(reg);
    cr_assert_eq(symlink(reg, link), 0);
    cr_assert(st_write(link, &t, 1, NULL, 0, err, sizeof err), "%s", err);
    cr_assert_eq(lstat(link, &st), 0);
    cr_expect(S_ISLNK(st.st_mode), "the link was replaced by a file");
    StFile f;
    cr_assert(st_read(reg, &f, err, sizeof err), "%s", err);
    cr_expect_eq(((float *)st_find(&f, "w")->data)[1], 2.0f);
    st_free(&f);
}

/* The pid of a process that has exited (and been reaped). */
static long dead_pid(void) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    cr_assert_gt(p, 0);
    waitpid(p, NULL, 0);
    return (long)p;
}

Test(outfile, removes_temporaries_of_dead_writers_only) {
    char path[PATH_MAX], dead[PATH_MAX + 32], live[PATH_MAX + 32], other[PATH_MAX];
    snprintf(path, sizeof path, "%s", in_dir("checkpoint.safetensors"));
    snprintf(dead, sizeof dead, "%s.tmp.%ld", path, dead_pid());
    snprintf(live, sizeof live, "%s.tmp.%ld", path, (long)getpid());
    snprintf(other, sizeof other, "%s", in_dir("other.safetensors.tmp.1"));
    touch(dead), touch(live), touch(other);
    char *log = NULL;
    size_t len = 0;
    FILE *note = open_memstream(&log, &len);
    cr_expect_eq(outfile_remove_stale(path, note), 1);
    fclose(note);
    cr_expect(strstr(log, "removed") && strstr(log, dead), "%s", log);
    free(log);
    cr_expect_neq(access(dead, F_OK), 0, "the dead writer's temporary is still there");
    cr_expect_eq(access(live, F_OK), 0, "a live writer's temporary was removed");
    cr_expect_eq(access(other, F_OK), 0, "another file's temporary was removed");
}
