/* Model key files for encrypted packs (occ pack --encrypt-key, occ run /
 * occ inspect --key): exactly 32 raw bytes. */
#ifndef OCC_CLI_KEYFILE_H
#define OCC_CLI_KEYFILE_H

#include <stdint.h>

#include "occ/status.h"

/* Reads the 32-byte key in path into key. With create and no such file,
 * makes one (32 random bytes, mode 0600, never overwriting: O_EXCL) and
 * sets *created. A file of another size is an error naming its size; a
 * key file readable by group or others draws a warning on stderr. On
 * failure key is wiped. */
occ_status occ_cli_read_key(const char *path, uint8_t key[32], int create, int *created,
                            occ_error *e) OCC_MUST_CHECK;

#endif
