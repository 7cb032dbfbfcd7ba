/* The settings of a graph file's `train` and `eval` sections: one table of
 * keys, types, ranges and defaults, which the frontend checks files
 * against, the executables take their defaults and check their flags
 * from, and docs/graph-format.md's settings table is checked against
 * (tests/base/test_settings.c). */
#ifndef IGRC_BASE_SETTINGS_H
#define IGRC_BASE_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    SET_NUM,  /* a number in [lo, hi] (an end excluded when lo_open / hi_open) */
    SET_INT,  /* an integer in [lo, hi] */
    SET_BOOL, /* true/false (or 0/1) */
    SET_ENUM, /* one of the '|'-separated choices */
    SET_TEXT, /* a string the consumer parses (lr_milestones "75,90") */
} SettingKind;

typedef struct {
    const char *key; /* "train.lr" */
    SettingKind kind;
    double lo, hi;
    bool lo_open, hi_open;
    double dflt;          /* SET_NUM, SET_INT, SET_BOOL */
    const char *choices;  /* SET_ENUM: "adam|sgd"; its default is the first */
    const char *doc;
} SettingSpec;

/* The whole table, in documentation order. */
const SettingSpec *settings_table(int *n);
/* The spec of key, or NULL. */
const SettingSpec *settings_find(const char *key);
/* The known key closest to key by edit distance (for "did you mean"). */
const char *settings_closest(const char *key);
/* Checks a numeric value against s (kind, range, integrality); false with
 * "must be ..." in err. */
bool settings_check_num(const SettingSpec *s, double v, char *err, size_t cap);
/* Checks a string value against s (SET_ENUM choices, SET_TEXT any). */
bool settings_check_str(const SettingSpec *s, const char *v, char *err, size_t cap);
/* The default of a numeric setting (0 for unknown keys). */
double settings_default(const char *key);
/* The default of a SET_ENUM setting (its first choice, in static storage),
 * NULL for others. */
const char *settings_default_str(const char *key);

#endif
