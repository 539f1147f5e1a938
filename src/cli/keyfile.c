/* Model key files (see keyfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cli/keyfile.h"

static occ_status make_key(const char *path, uint8_t key[32], occ_error *e)
{
    if (RAND_bytes(key, 32) != 1)
        return occ_fail(e, OCC_ERR_INTERNAL, "no randomness for a new key");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return occ_fail(e, OCC_ERR_IO, "cannot create key file %s: %s", path, strerror(errno));
    ssize_t n = write(fd, key, 32);
    int bad = n != 32 || fsync(fd) != 0;
    int err = errno;
    if (close(fd) != 0)
        bad = 1;
    if (bad) {
        unlink(path);
        return occ_fail(e, OCC_ERR_IO, "cannot write key file %s: %s", path, strerror(err));
    }
    return OCC_OK;
}

occ_status occ_cli_read_key(const char *path, uint8_t key[32], int create, int *created, occ_error *e)
{
    if (created)
        *created = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        occ_status s = make_key(path, key, e);
        if (s)
            OPENSSL_cleanse(key, 32);
        else if (created)
            *created = 1;
        return s;
    }
    if (fd < 0)
        return occ_fail(e, OCC_ERR_IO, "cannot open key file %s: %s", path, strerror(errno));
    struct stat st;
    occ_status s = OCC_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        s = occ_fail(e, OCC_ERR_IO, "key file %s is not a regular file", path);
    else if (st.st_size != 32)
        s = occ_fail(e, OCC_ERR_KEY, "key file %s has %lld bytes; a model key is exactly 32 raw bytes",
                     path, (long long)st.st_size);
    else if (read(fd, key, 32) != 32)
        s = occ_fail(e, OCC_ERR_IO, "cannot read key file %s", path);
    if (!s && (st.st_mode & 077))
        fprintf(stderr, "occ: warning: key file %s is readable by others (mode %04o): chmod 600 %s\n",
                path, (unsigned)(st.st_mode & 07777), path);
    close(fd);
    if (s)
        OPENSSL_cleanse(key, 32);
    return s;
}
