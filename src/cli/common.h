/* Helpers shared by the CLI subcommands. */
#ifndef OCC_CLI_COMMON_H
#define OCC_CLI_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "occ/model.h"
#include "occ/pack.h"

/* Opens a pack and decodes its manifest (checking the header's data size
 * against the manifest's). Both outputs are owned by the caller. */
occ_status occ_cli_open_model(const char *path, occ_packfile **pf, occ_model **m, occ_error *e) OCC_MUST_CHECK;

/* Reads a whole file of exactly `size` bytes into dst; a size mismatch is an
 * error that names both sizes. */
occ_status occ_cli_read_exact(const char *path, void *dst, size_t size, const char *what,
                              occ_error *e) OCC_MUST_CHECK;
occ_status occ_cli_write_file(const char *path, const void *src, size_t size, occ_error *e) OCC_MUST_CHECK;

void occ_cli_print_json(cJSON *root);
cJSON *occ_cli_preproc_json(const occ_preproc *p);

/* Formats a tensor shape like "[1,3,224,224]". */
void occ_cli_shape(const occ_tensor *t, char *buf, size_t size);

double occ_cli_now_ms(void);

/* Parses a decimal integer in [lo, hi]; 0 on success, -1 otherwise. */
int occ_cli_parse_int(const char *s, int lo, int hi, int *out);

/* qsort comparator for doubles, ascending. */
int occ_cli_cmp_double(const void *a, const void *b);

#endif
