/* Graph file -> Module: inputs, settings, parameters and the `predict`
 * entry point. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/contract.h"
#include "base/settings.h"
#include "frontend/objective.h"

#define DEFAULT_BATCH 128

bool frontend_size_ok(const Type *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dim[i] < 0 || (t->dim[i] > 0 && n > FRONTEND_MAX_NUMEL / t->dim[i])) return false;
        n *= t->dim[i];
    }
    return true;
}

static bool read_batch(const cJSON *doc, const char *file, const FrontendOptions *o,
                       int64_t *batch, Diag *d) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(doc, "batch");
    *batch = DEFAULT_BATCH;
    if (b) {
        if (!cJSON_IsNumber(b) || b->valuedouble < 1 || b->valuedouble > 1 << 20 ||
            b->valuedouble != floor(b->valuedouble))
            return ferr(d, doc_origin(doc, "batch", file), "batch", "must be an integer in [1, 1048576]");
        *batch = (int64_t)b->valuedouble;
    }
    if (o && o->batch > 0) *batch = o->batch;
    return true;
}

/* One entry of "inputs": {"shape": ["B", 1, 28, 28], "dtype": "f32",
 * "range": [0, 1], "classes": 10}; "B" is the batch. */
static bool read_input(Module *m, const cJSON *doc, const cJSON *in, const char *root_file, Diag *d) {
    static const char *const keys[] = {"shape", "dtype", "range", "classes", NULL};
    char jp[300];
    snprintf(jp, sizeof jp, "inputs.%s", in->string);
    const char *file = doc_origin(doc, jp, root_file);
    if (!cJSON_IsObject(in)) return ferr(d, file, jp, "must be an object");
    if (!check_keys(d, file, jp, in, keys)) return false;
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(in, "shape");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(in, "dtype");
    Type t = {.dtype = DT_F32};
    if (dt && (!cJSON_IsString(dt) || !dtype_parse(dt->valuestring, &t.dtype)))
        return ferr(d, file, jp, "'dtype' must be one of f32, f64, i32, bool");
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > IR_MAX_RANK)
        return ferr(d, file, jp, "'shape' must be a list of at most %d dims", IR_MAX_RANK);
    bool batched = false;
    for (const cJSON *s = shape->child; s; s = s->next) {
        if (cJSON_IsString(s) && strcmp(s->valuestring, "B") == 0 && t.rank == 0) {
            t.dim[t.rank++] = m->batch;
            batched = true;
        } else if (cJSON_IsNumber(s) && s->valuedouble >= 1 && s->valuedouble <= 1 << 24 &&
                   s->valuedouble == floor(s->valuedouble)) {
            t.dim[t.rank++] = (int64_t)s->valuedouble;
        } else {
            return ferr(d, file, jp, "'shape' entries must be positive integers or a leading \"B\"");
        }
    }
    if (!frontend_size_ok(&t))
        return ferr(d, file, jp, "'shape' has more than 2^40 elements");
    InputDesc *desc = module_add_input(m, in->string, t);
    desc->batched = batched;
    const cJSON *range = cJSON_GetObjectItemCaseSensitive(in, "range");
    if (range) {
        if (!cJSON_IsArray(range) || cJSON_GetArraySize(range) != 2 ||
            !cJSON_IsNumber(range->child) ||
            !cJSON_IsNumber(range->child->next) ||
            range->child->valuedouble > range->child->next->valuedouble)
            return ferr(d, file, jp, "'range' must be [lo, hi] with lo <= hi");
        desc->lo = range->child->valuedouble;
        desc->hi = range->child->next->valuedouble;
    }
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(in, "classes");
    if (cl) {
        if (!cJSON_IsNumber(cl) || cl->valuedouble < 2 || cl->valuedouble > 1 << 24 ||
            cl->valuedouble != floor(cl->valuedouble))
            return ferr(d, file, jp, "'classes' must be an integer in [2, 16777216]");
        desc->classes = (int)cl->valuedouble;
    }
    return true;
}

/* train.* and eval.* become module settings ("train.lr"), as do data/name. */
static bool read_settings(Module *m, const cJSON *doc, const char *root_file, Diag *d) {
    static const char *const secs[] = {"train", "eval", NULL};
    for (const char *const *s = secs; *s; s++) {
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(doc, *s);
        for (const cJSON *it = sec ? sec->child : NULL; it; it = it->next) {
            char key[300], why[256];
            snprintf(key, sizeof key, "%s.%s", *s, it->string);
            const char *file = doc_origin(doc, key, root_file);
            const SettingSpec *spec = settings_find(key);
            if (!spec)
                return ferr(d, file, key, "unknown setting (did you mean %s?)", settings_closest(key));
            if (cJSON_IsNumber(it) || cJSON_IsBool(it)) {
                double v = cJSON_IsBool(it) ? cJSON_IsTrue(it) : it->valuedouble;
                if (!settings_check_num(spec, v, why, sizeof why)) return ferr(d, file, key, "%s", why);
                module_set_num(m, key, v);
            } else if (cJSON_IsString(it)) {
                if (!settings_check_str(spec, it->valuestring, why, sizeof why))
                    return ferr(d, file, key, "%s", why);
                module_set_str(m, key, it->valuestring);
            } else {
                return ferr(d, file, key, "settings must be numbers, booleans or strings");
            }
        }
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    if (data && !cJSON_IsString(data))
        return ferr(d, doc_origin(doc, "data", root_file), "data", "must be a data set name");
    if (data) module_set_str(m, "data", data->valuestring);
    return true;
}

static const char *pick_network(const cJSON *doc, const char *file, Diag *d) {
    const cJSON *sel = cJSON_GetObjectItemCaseSensitive(doc, "network");
    const cJSON *nets = cJSON_GetObjectItemCaseSensitive(doc, "networks");
    if (sel) {
        if (!cJSON_IsString(sel))
            return ferr(d, doc_origin(doc, "network", file), "network", "must name a network"), NULL;
        return sel->valuestring;
    }
    int n = nets ? cJSON_GetArraySize(nets) : 0;
    if (n == 1) return nets->child->string;
    ferr(d, file, "network", n ? "several networks: name the model's one with \"network\""
                               : "no network: neither this file nor its includes define one");
    return NULL;
}

/* predict(x) -> logits, the network in evaluation mode. */
static bool build_predict(Module *m, const cJSON *doc, const char *file, Diag *d) {
    const char *net = pick_network(doc, file, d);
    if (!net) return false;
    const cJSON *def = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "networks"), net);
    if (!def) {
        char list[1024] = "";
        const cJSON *nets = cJSON_GetObjectItemCaseSensitive(doc, "networks");
        for (const cJSON *it = nets ? nets->child : NULL; it; it = it->next) {
            strncat(list, *list ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, it->string, sizeof list - strlen(list) - 1);
        }
        return ferr(d, doc_origin(doc, "network", file), "network", "no network named '%s' (defined: %s)", net,
                    *list ? list : "none");
    }
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(def, "input");
    const char *iname = cJSON_IsString(in) ? in->valuestring : "x";
    const InputDesc *desc = NULL;
    for (int i = 0; i < m->ninputs; i++)
        if (strcmp(m->inputs[i].name, iname) == 0) desc = &m->inputs[i];
    if (!desc)
        return ferr(d, doc_file_of(def, file), "inputs",
                    "network '%s' reads input '%s', which \"inputs\" does not describe", net, iname);
    Builder b = {m, module_add_func(m, ENTRY_PREDICT), d};
    NetEnv env = {.b = &b, .doc = doc, .root_file = file, .training = false, .rng_key = -1,
                  .notes = true};
    int x = b_input(&b, iname, desc->type);
    int y = net_emit(&env, net, x);
    if (y < 0) return false;
    func_add_output(m, b.f, OUT_LOGITS, y);
    return true;
}

Module *frontend_load(const char *path, const FrontendOptions *o, Diag *d) {
    cJSON *doc = doc_load(path, d);
    if (!doc) return NULL;
    Module *m = NULL;
    if ((o && !doc_apply_defines(doc, path, o->defines, o->ndefines, d)) ||
        !frontend_check_names(doc, path, d) || !obj_check_losses(doc, path, d))
        goto done;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char stem[256];
    snprintf(stem, sizeof stem, "%.*s", (int)strcspn(base, "."), base);
    for (char *c = stem; *c; c++) /* "my model.json" is program my_model */
        if (!frontend_name_ok((char[]){*c, 0})) *c = '_';
    if (!stem[0]) snprintf(stem, sizeof stem, "model");
    m = module_new(cJSON_IsString(name) ? name->valuestring : stem);
    if (!read_batch(doc, path, o, &m->batch, d)) goto fail;
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(doc, "inputs");
    for (const cJSON *in = inputs ? inputs->child : NULL; in; in = in->next)
        if (!read_input(m, doc, in, path, d)) goto fail;
    if (!read_settings(m, doc, path, d) || !build_predict(m, doc, path, d) ||
        !objective_build(m, doc, path, pick_network(doc, path, d), d))
        goto fail;
    goto done;
fail:
    module_free(m);
    m = NULL;
done:
    cJSON_Delete(doc);
    return m;
}
