/* Names a graph file gives (the model's name, inputs, networks, blocks,
 * losses and node ids) become IR value names, parameter names (PyTorch
 * state_dict keys) and tokens of the executable's embedded program, which
 * is blank-separated: a name with a blank, a quote or a '#' would compile
 * into an executable that refuses to start. So every name is checked here,
 * once, against the IR's bare-name characters (docs/graph-format.md,
 * "Names"). */
#include <stdio.h>
#include <string.h>

#include "frontend/internal.h"

#define NAME_MAX_LEN 128

static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
}

bool frontend_name_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NAME_MAX_LEN) return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i])) return false;
    return true;
}

static bool check_name(Diag *d, const char *file, const char *jpath, const char *what,
                       const char *s) {
    if (frontend_name_ok(s)) return true;
    return ferr(d, file, jpath, "%s '%s' is not a valid name: 1 to %d characters of A-Z a-z 0-9 "
                "_ . : -", what, s, NAME_MAX_LEN);
}

/* The ids of a graph's nodes (a missing or non-string id is reported where
 * the graph is lowered). */
static bool check_nodes(Diag *d, const char *file, const char *where, const cJSON *graph) {
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(graph, "nodes");
    int i = 0;
    for (const cJSON *n = cJSON_IsArray(nodes) ? nodes->child : NULL; n; n = n->next, i++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(n, "id");
        char jp[512];
        snprintf(jp, sizeof jp, "%s.nodes[%d].id", where, i);
        if (cJSON_IsString(id) && !check_name(d, file, jp, "node id", id->valuestring)) return false;
    }
    return true;
}

/* The keys of a section (inputs, networks, blocks, losses) and, for
 * graphs, their node ids; each in the file it came from. */
static bool check_section(Diag *d, const cJSON *doc, const char *root_file, const char *sec) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, sec);
    for (const cJSON *e = cJSON_IsObject(s) ? s->child : NULL; e; e = e->next) {
        char jp[512];
        snprintf(jp, sizeof jp, "%s.%s", sec, e->string);
        const char *file = doc_file_of(e, doc_origin(doc, jp, root_file));
        if (!check_name(d, file, jp, "name", e->string)) return false;
        if (strcmp(sec, "inputs") && !check_nodes(d, file, jp, e)) return false;
    }
    return true;
}

bool frontend_check_names(const cJSON *doc, const char *root_file, Diag *d) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(doc, "description");
    if (desc && !cJSON_IsString(desc))
        return ferr(d, doc_origin(doc, "description", root_file), "description", "must be a string");
    const char *nfile = doc_origin(doc, "name", root_file);
    if (name && !cJSON_IsString(name))
        return ferr(d, nfile, "name", "must be a string (the model's name)");
    if (name && !check_name(d, nfile, "name", "the model's name", name->valuestring))
        return false;
    static const char *const sections[] = {"inputs", "networks", "blocks", "losses"};
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++)
        if (!check_section(d, doc, root_file, sections[i])) return false;
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(doc, "objective");
    return !cJSON_IsObject(obj) || check_nodes(d, doc_file_of(obj, root_file), "objective", obj);
}
