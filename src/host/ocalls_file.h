/* Host side (untrusted) of the ocall table for `occ run` / `occ bench`:
 * weight chunks come from .occ pack files; there is no network (send fails,
 * close does nothing); time is CLOCK_MONOTONIC. The trusted core sees only
 * the occ_ocalls table (occ/boundary.h), normally wrapped by the counting
 * boundary (occ/boundary_emu.h). */
#ifndef OCC_HOST_OCALLS_FILE_H
#define OCC_HOST_OCALLS_FILE_H

#include <stdint.h>

#include "occ/boundary.h"
#include "occ/pack.h"

typedef struct occ_host_files {
    occ_packfile *const *packs; /* pack_id indexes this array; not owned */
    uint32_t n_packs;
} occ_host_files;

/* Fills *out with the file-backed ocalls over `files` (which must outlive
 * every use of the table). */
void occ_host_files_ocalls(occ_host_files *files, occ_ocalls *out);

#endif
