/* Graph documents: reading JSON with line/column errors, resolving
 * includes into one merged object, and -D overrides. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/settings.h"
#include "frontend/internal.h"

bool ferr(Diag *d, const char *file, const char *jpath, const char *fmt, ...) {
    char msg[2048], all[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (jpath && *jpath) snprintf(all, sizeof all, "%s: %s: %s", file, jpath, msg);
    else snprintf(all, sizeof all, "%s: %s", file, msg);
    /* Names quoted from the file may hold control characters (cJSON takes
     * raw newlines in strings): keep the message on one line. */
    for (char *p = all; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
    return diag_error(d, EXIT_BADINPUT, "%s", all);
}

bool check_keys(Diag *d, const char *file, const char *jpath, const cJSON *obj,
                const char *const *allowed) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        if (strcmp(it->string, DOC_FILE_KEY) == 0) continue;
        const char *const *a = allowed;
        while (*a && strcmp(*a, it->string) != 0) a++;
        if (*a) continue;
        char list[1024] = "";
        for (a = allowed; *a; a++) {
            strncat(list, a == allowed ? "" : ", ", sizeof list - strlen(list) - 1);
            strncat(list, *a, sizeof list - strlen(list) - 1);
        }
        return ferr(d, file, jpath, "unknown key '%s' (allowed: %s)", it->string, list);
    }
    return true;
}

const char *doc_file_of(const cJSON *obj, const char *fallback) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, DOC_FILE_KEY);
    return cJSON_IsString(f) ? f->valuestring : fallback;
}

const char *doc_origin(const cJSON *doc, const char *jpath, const char *fallback) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, DOC_ORIGIN_KEY), jpath);
    return cJSON_IsString(f) ? f->valuestring : fallback;
}

/* Records that doc's jpath now comes from `from` (replacing an earlier
 * origin: later definitions override). */
static void set_origin(cJSON *doc, const char *jpath, const char *from) {
    cJSON *o = cJSON_GetObjectItemCaseSensitive(doc, DOC_ORIGIN_KEY);
    if (!o) o = cJSON_AddObjectToObject(doc, DOC_ORIGIN_KEY);
    cJSON_DeleteItemFromObjectCaseSensitive(o, jpath);
    cJSON_AddStringToObject(o, jpath, from);
}

static char *read_file(const char *path, Diag *d) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_error(d, EXIT_BADINPUT, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    /* A directory opens fine on Linux but has no size to read: check that
     * this is a regular file of sane size before allocating. */
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        diag_error(d, EXIT_BADINPUT, "%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    if (sb.st_size > (off_t)1 << 30) {
        diag_error(d, EXIT_BADINPUT, "%s: too large for a graph file (%lld bytes)", path,
                   (long long)sb.st_size);
        fclose(f);
        return NULL;
    }
    long n = (long)sb.st_size;
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        diag_error(d, EXIT_BADINPUT, "%s: cannot read", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* cJSON reports a bad object key, and a string that does not end, one
 * character past where it starts: move back onto it. p = at - 1 is that
 * start when it opens a string, or when it stands where an object expects
 * a key (after '{' or ','). */
static const char *error_pos(const char *text, const char *at) {
    if (at <= text) return at;
    const char *p = at - 1;
    enum { MAXD = 1024 };
    char stack[MAXD];
    int depth = 0;
    bool in_str = false;
    char last = 0; /* last significant character before p */
    for (const char *q = text; q < p; q++) {
        if (in_str) {
            if (*q == '\\' && q + 1 < p) q++;
            else if (*q == '"') in_str = false, last = '"';
            continue;
        }
        if (*q == '"') {
            in_str = true;
            continue;
        }
        if (*q == '{' || *q == '[') {
            if (depth < MAXD) stack[depth] = *q;
            depth++;
        } else if ((*q == '}' || *q == ']') && depth > 0) {
            depth--;
        }
        if (!isspace((unsigned char)*q)) last = *q;
    }
    if (in_str) return at;
    if (*p == '"') return p;
    bool in_object = depth > 0 && depth <= MAXD && stack[depth - 1] == '{';
    if (in_object && (last == '{' || last == ',') && !isspace((unsigned char)*p)) return p;
    return at;
}

static cJSON *parse_json(const char *path, Diag *d) {
    char *text = read_file(path, d);
    if (!text) return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, true);
    if (!root) {
        const char *at = error_pos(text, end ? end : text);
        int line = 1, col = 1;
        for (const char *p = text; p < at && *p; p++) {
            if (*p == '\n') line++, col = 1;
            else col++;
        }
        /* Quote the rest of the offending line only: one line of message. */
        int len = (int)strcspn(at, "\r\n");
        if (*at == '\0')
            diag_error(d, EXIT_BADINPUT, "%s:%d:%d: malformed JSON: unexpected end of file", path,
                       line, col);
        else
            diag_error(d, EXIT_BADINPUT, "%s:%d:%d: malformed JSON near '%.*s'", path, line, col,
                       len < 20 ? len : 20, at);
    } else if (!cJSON_IsObject(root)) {
        diag_error(d, EXIT_BADINPUT, "%s: the top level must be a JSON object", path);
        cJSON_Delete(root);
        root = NULL;
    }
    free(text);
    return root;
}

static const char *const TOP_KEYS[] = {"igrc",  "name",  "description", "include", "inputs",
                                       "networks", "blocks", "params", "network", "batch",
                                       "data",  "train", "eval", "objective", "losses", NULL};
static const char *const UNION_SECTIONS[] = {"networks", "blocks", "losses", NULL};
static const char *const OVERRIDE_SECTIONS[] = {"params", "inputs", "train", "eval", NULL};

static bool same_file(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

/* src's section sec (*from, NULL if absent) and dst's, created if needed
 * (*to); false, with the error, if src's is not an object. */
static bool section_pair(cJSON *dst, cJSON *src, const char *sec, const char *file, Diag *d,
                         cJSON **from, cJSON **to) {
    *from = cJSON_GetObjectItemCaseSensitive(src, sec);
    *to = NULL;
    if (!*from) return true;
    if (!cJSON_IsObject(*from)) return ferr(d, file, sec, "must be an object");
    *to = cJSON_GetObjectItemCaseSensitive(dst, sec);
    if (!*to) *to = cJSON_AddObjectToObject(dst, sec);
    return true;
}

/* Moves every entry of src's section into dst's, tagging definitions with
 * their file; a name defined twice is an error naming both files. */
static bool merge_union(cJSON *dst, cJSON *src, const char *sec, const char *file, Diag *d) {
    cJSON *from, *to;
    if (!section_pair(dst, src, sec, file, d, &from, &to)) return false;
    if (!from) return true;
    while (from->child) {
        cJSON *item = cJSON_DetachItemViaPointer(from, from->child);
        if (!cJSON_IsObject(item)) {
            ferr(d, file, sec, "entry '%s' must be an object", item->string);
            cJSON_Delete(item);
            return false;
        }
        cJSON *prev = cJSON_GetObjectItemCaseSensitive(to, item->string);
        if (prev) {
            /* The same file reached twice (a includes b and c, both of which
             * include d) is one definition, not two. */
            const char *here = doc_file_of(item, file), *there = doc_file_of(prev, "?");
            if (same_file(here, there)) {
                cJSON_Delete(item);
                continue;
            }
            ferr(d, here, sec, "'%s' is also defined in %s", item->string, there);
            cJSON_Delete(item);
            return false;
        }
        if (!cJSON_GetObjectItemCaseSensitive(item, DOC_FILE_KEY))
            cJSON_AddStringToObject(item, DOC_FILE_KEY, file);
        cJSON_AddItemToObject(to, item->string, item);
    }
    return true;
}

/* Later definitions override earlier ones key by key. */
static bool merge_override(cJSON *dst, cJSON *src, const char *sec, const char *file, Diag *d) {
    cJSON *from, *to;
    if (!section_pair(dst, src, sec, file, d, &from, &to)) return false;
    if (!from) return true;
    while (from->child) {
        cJSON *item = cJSON_DetachItemViaPointer(from, from->child);
        char jp[512];
        snprintf(jp, sizeof jp, "%s.%s", sec, item->string);
        set_origin(dst, jp, doc_origin(src, jp, file)); /* src's own includes know better */
        cJSON_DeleteItemFromObjectCaseSensitive(to, item->string);
        cJSON_AddItemToObject(to, item->string, item);
    }
    return true;
}

static bool merge_into(cJSON *dst, cJSON *src, const char *file, Diag *d) {
    for (const char *const *s = UNION_SECTIONS; *s; s++)
        if (!merge_union(dst, src, *s, file, d)) return false;
    for (const char *const *s = OVERRIDE_SECTIONS; *s; s++)
        if (!merge_override(dst, src, *s, file, d)) return false;
    static const char *const scalars[] = {"name", "network", "batch", "data", "description", "objective", NULL};
    for (const char *const *s = scalars; *s; s++) {
        cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(src, *s);
        if (!v) continue;
        set_origin(dst, *s, doc_origin(src, *s, file));
        /* the objective graph remembers its file, so its errors name it */
        if (cJSON_IsObject(v) && !cJSON_GetObjectItemCaseSensitive(v, DOC_FILE_KEY))
            cJSON_AddStringToObject(v, DOC_FILE_KEY, file);
        cJSON_DeleteItemFromObjectCaseSensitive(dst, *s);
        cJSON_AddItemToObject(dst, *s, v);
    }
    return true;
}

typedef struct Stack {
    const char *real;
    const struct Stack *up;
} Stack;

static cJSON *load_rec(const char *path, const char *from, const Stack *up, Diag *d);

static bool check_version(const cJSON *root, const char *path, Diag *d) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "igrc");
    if (v && !(cJSON_IsNumber(v) && v->valuedouble == 1))
        return ferr(d, path, "igrc", "this igrc reads graph format 1");
    return check_keys(d, path, "", root, TOP_KEYS);
}

/* Path of an include, relative to the including file's directory. */
static void include_path(const char *from, const char *inc, char *out, size_t cap) {
    const char *slash = strrchr(from, '/');
    if (inc[0] == '/' || !slash) snprintf(out, cap, "%s", inc);
    else snprintf(out, cap, "%.*s/%s", (int)(slash - from), from, inc);
}

static bool load_includes(cJSON *acc, const cJSON *root, const char *path, const Stack *here,
                          Diag *d) {
    const cJSON *inc = cJSON_GetObjectItemCaseSensitive(root, "include");
    if (!inc) return true;
    if (!cJSON_IsArray(inc)) return ferr(d, path, "include", "must be a list of file names");
    int i = 0;
    for (const cJSON *it = inc->child; it; it = it->next, i++) {
        char jp[64], sub[PATH_MAX];
        snprintf(jp, sizeof jp, "include[%d]", i);
        if (!cJSON_IsString(it)) return ferr(d, path, jp, "must be a file name");
        include_path(path, it->valuestring, sub, sizeof sub);
        cJSON *child = load_rec(sub, path, here, d);
        if (!child) {
            diag_prefix(d, "%s: %s", path, jp);
            return false;
        }
        bool ok = merge_into(acc, child, sub, d);
        cJSON_Delete(child);
        if (!ok) {
            diag_prefix(d, "%s: %s", path, jp);
            return false;
        }
    }
    return true;
}

static cJSON *load_rec(const char *path, const char *from, const Stack *up, Diag *d) {
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        if (from) diag_error(d, EXIT_BADINPUT, "included file %s not found", path);
        else diag_error(d, EXIT_BADINPUT, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    for (const Stack *s = up; s; s = s->up)
        if (strcmp(s->real, real) == 0) {
            diag_error(d, EXIT_BADINPUT, "include cycle: %s includes itself again", path);
            return NULL;
        }
    Stack here = {real, up};
    cJSON *root = parse_json(path, d);
    if (!root || !check_version(root, path, d)) {
        cJSON_Delete(root);
        return NULL;
    }
    cJSON *acc = cJSON_CreateObject();
    bool ok = load_includes(acc, root, path, &here, d) && merge_into(acc, root, path, d);
    cJSON_Delete(root);
    if (!ok) {
        cJSON_Delete(acc);
        return NULL;
    }
    return acc;
}

cJSON *doc_load(const char *path, Diag *d) { return load_rec(path, NULL, NULL, d); }

/* ---- -D overrides ---- */

static cJSON *parse_value(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (*s && *end == '\0') return cJSON_CreateNumber(v);
    if (strcmp(s, "true") == 0) return cJSON_CreateTrue();
    if (strcmp(s, "false") == 0) return cJSON_CreateFalse();
    return cJSON_CreateString(s);
}

/* Settings of the table (base/settings.h) have a default, so
 * -D train.NAME=V and -D eval.NAME=V may set them though the file leaves
 * them out (docs/graph-format.md). */
static bool has_default(const char *section, const char *leaf) {
    char key[300];
    snprintf(key, sizeof key, "%s.%s", section, leaf);
    return settings_find(key) != NULL;
}

/* Finds the object holding `key` (dotted path) or, for a plain name, the
 * first of params, train, eval and the top level that has it. */
static cJSON *override_site(cJSON *doc, char *key, char **leaf) {
    char *dot = strrchr(key, '.');
    if (!dot) {
        static const char *const where[] = {"params", "train", "eval", NULL};
        *leaf = key;
        for (const char *const *w = where; *w; w++) {
            cJSON *o = cJSON_GetObjectItemCaseSensitive(doc, *w);
            if (o && cJSON_GetObjectItemCaseSensitive(o, key)) return o;
        }
        if (cJSON_GetObjectItemCaseSensitive(doc, key)) return doc;
        /* Top-level settings with a default may be set though the file
         * leaves them out (-D batch=4 on a network file). */
        static const char *const scalars[] = {"batch", "network", "data", "name", NULL};
        for (const char *const *s = scalars; *s; s++)
            if (strcmp(*s, key) == 0) return doc;
        return NULL;
    }
    *dot = '\0';
    *leaf = dot + 1;
    cJSON *o = doc;
    for (char *p = key, *q; p && o; p = q) {
        q = strchr(p, '.');
        if (q) *q++ = '\0';
        o = cJSON_GetObjectItemCaseSensitive(o, p);
    }
    if (!o || !cJSON_IsObject(o)) return NULL;
    return cJSON_GetObjectItemCaseSensitive(o, *leaf) || has_default(key, *leaf) ? o : NULL;
}

bool doc_apply_defines(cJSON *doc, const char *root_file, const char *const *defs, int n, Diag *d) {
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(defs[i], '=');
        if (!eq || eq == defs[i])
            return diag_error(d, EXIT_BADINPUT, "-D %s: expected key=value (a setting of %s)",
                              defs[i], root_file);
        char key[256], *leaf;
        snprintf(key, sizeof key, "%.*s", (int)(eq - defs[i]), defs[i]);
        cJSON *site = override_site(doc, key, &leaf);
        if (!site && strchr(defs[i], '.') && strchr(defs[i], '.') < eq)
            return diag_error(d, EXIT_BADINPUT, "-D %s: %s has no setting at path '%.*s'",
                              defs[i], root_file, (int)(eq - defs[i]), defs[i]);
        if (!site)
            return diag_error(d, EXIT_BADINPUT,
                              "-D %s: %s has no setting '%.*s' (looked in params, train, eval "
                              "and the top level; use a dotted path for others)",
                              defs[i], root_file, (int)(eq - defs[i]), defs[i]);
        cJSON *old = cJSON_GetObjectItemCaseSensitive(site, leaf);
        char origin[600];
        snprintf(origin, sizeof origin, "%s (-D %s)", root_file, defs[i]);
        if (site == doc) set_origin(doc, leaf, origin);
        else if (site->string && cJSON_GetObjectItemCaseSensitive(doc, site->string) == site) {
            char jp[512];
            snprintf(jp, sizeof jp, "%s.%s", site->string, leaf);
            set_origin(doc, jp, origin);
        }
        if (cJSON_IsObject(old) || cJSON_IsArray(old))
            return diag_error(d, EXIT_BADINPUT,
                              "-D %s: '%.*s' of %s is a %s, not a setting a value can replace",
                              defs[i], (int)(eq - defs[i]), defs[i], root_file,
                              cJSON_IsObject(old) ? "section" : "list");
        if (old)
            cJSON_ReplaceItemInObjectCaseSensitive(site, leaf, parse_value(eq + 1));
        else
            cJSON_AddItemToObject(site, leaf, parse_value(eq + 1));
    }
    return true;
}
