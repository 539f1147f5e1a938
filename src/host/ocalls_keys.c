/* The host's side of the key-fetch ocalls (docs/keys.md): the enclave asks
 * for a TCP connection to the key broker and moves its own TLS records over
 * it. Blocking sockets with 10 s timeouts: the fetch runs once, at start,
 * before the server accepts anyone. The host sees ciphertext only. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "occ/net.h"

#define KEY_CONNS 8

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_fd[KEY_CONNS] = {-1, -1, -1, -1, -1, -1, -1, -1};

static int fd_of(uint64_t h)
{
    if (h >= KEY_CONNS)
        return -1;
    pthread_mutex_lock(&g_mu);
    int fd = g_fd[h];
    pthread_mutex_unlock(&g_mu);
    return fd;
}

static occ_status oc_key_connect(void *host, const char *target, uint64_t *handle, occ_error *e)
{
    (void)host;
    char buf[300];
    size_t n = strnlen(target, sizeof buf);
    if (n == sizeof buf)
        return occ_fail(e, OCC_ERR_INVALID, "key server address too long");
    memcpy(buf, target, n + 1);
    char *colon = strrchr(buf, ':');
    if (!colon || colon == buf || !colon[1])
        return occ_fail(e, OCC_ERR_INVALID, "key server '%s': need HOST:PORT", buf);
    *colon = 0;
    char *hostpart = buf;
    if (hostpart[0] == '[' && colon[-1] == ']') {
        hostpart++;
        colon[-1] = 0;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int gr = getaddrinfo(hostpart, colon + 1, &hints, &res);
    if (gr)
        return occ_fail(e, OCC_ERR_IO, "key server %s: %s", target, gai_strerror(gr));
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return occ_fail(e, OCC_ERR_IO, "cannot connect to the key server %s: %s", target, strerror(err));
    pthread_mutex_lock(&g_mu);
    uint64_t h = KEY_CONNS;
    for (uint64_t i = 0; i < KEY_CONNS; i++)
        if (g_fd[i] < 0) {
            g_fd[i] = fd;
            h = i;
            break;
        }
    pthread_mutex_unlock(&g_mu);
    if (h == KEY_CONNS) {
        close(fd);
        return occ_fail(e, OCC_ERR_IO, "too many key server connections");
    }
    *handle = h;
    return OCC_OK;
}

static occ_status oc_key_send(void *host, uint64_t handle, const void *buf, size_t size, occ_error *e)
{
    (void)host;
    int fd = fd_of(handle);
    if (fd < 0)
        return occ_fail(e, OCC_ERR_INVALID, "no key server connection %llu", (unsigned long long)handle);
    const unsigned char *p = buf;
    while (size) {
        ssize_t w = send(fd, p, size, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return occ_fail(e, OCC_ERR_IO, "key server: send failed: %s", w < 0 ? strerror(errno) : "closed");
        p += w;
        size -= (size_t)w;
    }
    return OCC_OK;
}

static occ_status oc_key_recv(void *host, uint64_t handle, void *dst, size_t cap, size_t *got, occ_error *e)
{
    (void)host;
    *got = 0;
    int fd = fd_of(handle);
    if (fd < 0)
        return occ_fail(e, OCC_ERR_INVALID, "no key server connection %llu", (unsigned long long)handle);
    for (;;) {
        ssize_t r = recv(fd, dst, cap, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return occ_fail(e, OCC_ERR_IO, "key server: %s",
                            errno == EAGAIN || errno == EWOULDBLOCK ? "no answer within 10 s" : strerror(errno));
        *got = (size_t)r;
        return OCC_OK;
    }
}

static void oc_key_close(void *host, uint64_t handle)
{
    (void)host;
    if (handle >= KEY_CONNS)
        return;
    pthread_mutex_lock(&g_mu);
    int fd = g_fd[handle];
    g_fd[handle] = -1;
    pthread_mutex_unlock(&g_mu);
    if (fd >= 0)
        close(fd);
}

/* Sealed keys: DIR/<model id hex>.sealed, written whole (temporary file,
 * then rename), mode 0600. Opaque to the host. */
static char g_seal_dir[512];

occ_status occ_host_seal_dir(const char *dir, occ_error *e)
{
    if (strlen(dir) >= sizeof g_seal_dir - 80)
        return occ_fail(e, OCC_ERR_INVALID, "sealing folder path too long");
    if (mkdir(dir, 0700) && errno != EEXIST)
        return occ_fail(e, OCC_ERR_IO, "cannot make %s: %s", dir, strerror(errno));
    snprintf(g_seal_dir, sizeof g_seal_dir, "%s", dir);
    return OCC_OK;
}

static void seal_path(const uint8_t id[32], char *out, size_t cap, const char *suffix)
{
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    snprintf(out, cap, "%.430s/%s%s", g_seal_dir, hex, suffix);
}

static occ_status oc_seal_store(void *host, const uint8_t id[32], const void *blob, size_t size, occ_error *e)
{
    (void)host;
    if (!g_seal_dir[0])
        return occ_fail(e, OCC_ERR_INVALID, "no sealing folder");
    char path[600], tmp[600];
    seal_path(id, path, sizeof path, ".sealed");
    seal_path(id, tmp, sizeof tmp, ".sealed.tmp");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return occ_fail(e, OCC_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    ssize_t w = write(fd, blob, size);
    int bad = w != (ssize_t)size || fsync(fd);
    close(fd);
    if (bad || rename(tmp, path)) {
        unlink(tmp);
        return occ_fail(e, OCC_ERR_IO, "cannot write %s", path);
    }
    return OCC_OK;
}

static occ_status oc_seal_load(void *host, const uint8_t id[32], void *dst, size_t cap, size_t *got, occ_error *e)
{
    (void)host;
    *got = 0;
    if (!g_seal_dir[0])
        return OCC_OK;
    char path[600];
    seal_path(id, path, sizeof path, ".sealed");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? OCC_OK : occ_fail(e, OCC_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    ssize_t r = read(fd, dst, cap);
    close(fd);
    if (r < 0)
        return occ_fail(e, OCC_ERR_IO, "cannot read %s", path);
    *got = (size_t)r;
    return OCC_OK;
}

void occ_host_key_ocalls(occ_ocalls *out)
{
    out->seal_store = oc_seal_store;
    out->seal_load = oc_seal_load;
    out->key_connect = oc_key_connect;
    out->key_send = oc_key_send;
    out->key_recv = oc_key_recv;
    out->key_close = oc_key_close;
}
