/* The untrusted network side of the server (see include/occ/server.h).
 *
 * One epoll thread accepts connections, reads bytes and hands them to the
 * enclave (ecalls->conn_data), flushes queued output and enforces the
 * connection limit and the idle timeout. Worker threads run
 * ecalls->run_worker. The enclave sends from any thread through the send
 * ocall (direct non-blocking write, the rest queued for EPOLLOUT) and asks
 * for closes through the close ocall (done by the loop after the output
 * is flushed; the socket is then half-closed and drained briefly so the
 * peer reads the last response instead of a reset).
 *
 * This side only ever sees TLS records (and the plaintext metrics port). */
#include "occ/net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TAG_LISTEN (UINT64_MAX - 1)
#define TAG_METRICS (UINT64_MAX - 2)
#define TAG_EVENT (UINT64_MAX - 3)
#define METRICS_SLOTS 16
#define MAX_OUT_QUEUE (256u << 20)
#define DRAIN_NS 2000000000ull
#define RECV_BUF_SIZE (256u << 10)

typedef struct hconn {
    pthread_mutex_t mu;
    int fd; /* -1: free */
    uint32_t gen;
    uint64_t id;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    int want_close, draining, epollout;
    uint64_t last_active, drain_deadline;
} hconn;

struct occ_net {
    int lfd, mfd, epfd, evfd;
    uint16_t port, mport;
    uint32_t max_conns, n_slots;
    hconn *conns;
    uint64_t idle_ns;
    int workers;
    volatile sig_atomic_t stop;
    const occ_ecalls *ec;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static occ_status bind_listen(const char *spec, int *fd_out, uint16_t *port_out, occ_error *e)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof host || !colon[1])
        return occ_fail(e, OCC_ERR_INVALID, "listen address '%s' must be HOST:PORT", spec);
    size_t hl = (size_t)(colon - spec);
    memcpy(host, spec, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return occ_fail(e, OCC_ERR_INVALID, "bad port in '%s'", spec);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gr = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gr || !ai)
        return occ_fail(e, OCC_ERR_INVALID, "cannot resolve '%s': %s", host, gai_strerror(gr));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 512)) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return occ_fail(e, OCC_ERR_IO, "cannot listen on %s: %s", spec, strerror(err));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return OCC_OK;
}

occ_status occ_net_create(const occ_net_config *cfg, occ_net **out, occ_error *e)
{
    *out = NULL;
    occ_net *n = calloc(1, sizeof *n);
    if (!n)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    n->lfd = n->mfd = n->epfd = n->evfd = -1;
    n->max_conns = cfg->max_connections ? cfg->max_connections : 256;
    n->n_slots = n->max_conns + METRICS_SLOTS;
    n->idle_ns = (uint64_t)(cfg->idle_timeout_ms ? cfg->idle_timeout_ms : 60000) * 1000000u;
    n->workers = cfg->workers > 0 ? cfg->workers : 2;
    n->conns = calloc(n->n_slots, sizeof *n->conns);
    occ_status st;
    if (!n->conns) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < n->n_slots; i++) {
        pthread_mutex_init(&n->conns[i].mu, NULL);
        n->conns[i].fd = -1;
    }
    if ((st = bind_listen(cfg->listen ? cfg->listen : "127.0.0.1:8443", &n->lfd, &n->port, e)))
        goto fail;
    if (cfg->metrics_listen && (st = bind_listen(cfg->metrics_listen, &n->mfd, &n->mport, e)))
        goto fail;
    n->epfd = epoll_create1(EPOLL_CLOEXEC);
    n->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (n->epfd < 0 || n->evfd < 0) {
        st = occ_fail(e, OCC_ERR_IO, "epoll/eventfd: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.u64 = TAG_LISTEN;
    epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->lfd, &ev);
    ev.data.u64 = TAG_EVENT;
    epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->evfd, &ev);
    if (n->mfd >= 0) {
        ev.data.u64 = TAG_METRICS;
        epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->mfd, &ev);
    }
    *out = n;
    return OCC_OK;
fail:
    occ_net_free(n);
    return st;
}

uint16_t occ_net_port(const occ_net *n)
{
    return n->port;
}

uint16_t occ_net_metrics_port(const occ_net *n)
{
    return n->mfd >= 0 ? n->mport : 0;
}

void occ_net_stop(occ_net *n)
{
    n->stop = 1;
    uint64_t one = 1;
    ssize_t r = write(n->evfd, &one, sizeof one);
    (void)r;
}

void occ_net_free(occ_net *n)
{
    if (!n)
        return;
    for (uint32_t i = 0; n->conns && i < n->n_slots; i++) {
        if (n->conns[i].fd >= 0)
            close(n->conns[i].fd);
        free(n->conns[i].out);
        pthread_mutex_destroy(&n->conns[i].mu);
    }
    free(n->conns);
    if (n->lfd >= 0)
        close(n->lfd);
    if (n->mfd >= 0)
        close(n->mfd);
    if (n->epfd >= 0)
        close(n->epfd);
    if (n->evfd >= 0)
        close(n->evfd);
    free(n);
}

/* ---- the ocalls' side (any thread) ---- */

static hconn *lookup_locked(occ_net *n, uint64_t id)
{
    uint32_t slot = (uint32_t)(id & 0xffffffffu);
    if (slot >= n->n_slots)
        return NULL;
    hconn *h = &n->conns[slot];
    pthread_mutex_lock(&h->mu);
    if (h->fd < 0 || h->id != id || h->want_close) {
        pthread_mutex_unlock(&h->mu);
        return NULL;
    }
    return h;
}

static void want_out(occ_net *n, hconn *h, int on)
{
    if (h->epollout == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0)};
    ev.data.u64 = (uint64_t)(h - n->conns);
    epoll_ctl(n->epfd, EPOLL_CTL_MOD, h->fd, &ev);
    h->epollout = on;
}

/* Writes queued output; h->mu held. Returns -1 when the socket failed. */
static int flush_locked(occ_net *n, hconn *h)
{
    while (h->out_off < h->out_len) {
        ssize_t w = send(h->fd, h->out + h->out_off, h->out_len - h->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            h->out_off += (size_t)w;
            h->last_active = mono_ns();
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want_out(n, h, 1);
            return 0;
        } else {
            return -1;
        }
    }
    h->out_off = h->out_len = 0;
    want_out(n, h, 0);
    return 0;
}

static void wake(occ_net *n)
{
    uint64_t one = 1;
    ssize_t r = write(n->evfd, &one, sizeof one);
    (void)r;
}

/* Gives up on a connection from an ocall: h->mu held, released here. */
static occ_status drop(occ_net *n, hconn *h, const char *why, occ_error *e)
{
    h->want_close = 1;
    pthread_mutex_unlock(&h->mu);
    wake(n);
    return occ_fail(e, OCC_ERR_IO, "%s", why);
}

occ_status occ_net_send(occ_net *n, uint64_t id, const void *buf, size_t size, occ_error *e)
{
    hconn *h = lookup_locked(n, id);
    if (!h)
        return occ_fail(e, OCC_ERR_IO, "connection is gone");
    const uint8_t *p = buf;
    while (size && h->out_off == h->out_len) {
        ssize_t w = send(h->fd, p, size, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            size -= (size_t)w;
            h->last_active = mono_ns();
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return drop(n, h, "send failed", e);
        }
    }
    if (size) {
        if (h->out_len - h->out_off + size > MAX_OUT_QUEUE)
            return drop(n, h, "the peer does not read its responses", e);
        if (h->out_off) {
            memmove(h->out, h->out + h->out_off, h->out_len - h->out_off);
            h->out_len -= h->out_off;
            h->out_off = 0;
        }
        if (h->out_len + size > h->out_cap) {
            size_t cap = h->out_cap ? h->out_cap : 65536;
            while (cap < h->out_len + size)
                cap *= 2;
            uint8_t *q = realloc(h->out, cap);
            if (!q)
                return drop(n, h, "out of memory", e);
            h->out = q;
            h->out_cap = cap;
        }
        memcpy(h->out + h->out_len, p, size);
        h->out_len += size;
        want_out(n, h, 1);
    }
    pthread_mutex_unlock(&h->mu);
    return OCC_OK;
}

void occ_net_close(occ_net *n, uint64_t id)
{
    hconn *h = lookup_locked(n, id);
    if (!h)
        return;
    h->want_close = 1;
    pthread_mutex_unlock(&h->mu);
    wake(n);
}

/* ---- the loop's side ---- */

static void teardown(occ_net *n, hconn *h)
{
    pthread_mutex_lock(&h->mu);
    if (h->fd < 0) {
        pthread_mutex_unlock(&h->mu);
        return;
    }
    uint64_t id = h->id;
    epoll_ctl(n->epfd, EPOLL_CTL_DEL, h->fd, NULL);
    close(h->fd);
    h->fd = -1;
    h->gen++;
    h->out_len = h->out_off = 0;
    h->want_close = h->draining = h->epollout = 0;
    pthread_mutex_unlock(&h->mu);
    n->ec->conn_close(n->ec->enclave, id);
}

static void accept_all(occ_net *n, int lfd, int metrics)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        uint32_t lo = metrics ? n->max_conns : 0, hi = metrics ? n->n_slots : n->max_conns, slot = lo;
        while (slot < hi && n->conns[slot].fd >= 0)
            slot++;
        if (slot == hi) { /* over the connection limit: refuse at once */
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        hconn *h = &n->conns[slot];
        pthread_mutex_lock(&h->mu);
        h->fd = fd;
        h->gen++;
        if (!h->gen)
            h->gen = 1;
        h->id = ((uint64_t)(h->gen & 0x7fffffffu) << 32) | slot | (metrics ? OCC_CONN_METRICS_BIT : 0);
        h->last_active = mono_ns();
        h->want_close = h->draining = h->epollout = 0;
        h->out_len = h->out_off = 0;
        uint64_t id = h->id;
        pthread_mutex_unlock(&h->mu);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
        ev.data.u64 = slot;
        epoll_ctl(n->epfd, EPOLL_CTL_ADD, fd, &ev);
        if (n->ec->conn_open(n->ec->enclave, id, NULL)) {
            pthread_mutex_lock(&h->mu);
            epoll_ctl(n->epfd, EPOLL_CTL_DEL, fd, NULL);
            close(fd);
            h->fd = -1;
            pthread_mutex_unlock(&h->mu);
        }
    }
}

/* One read per readable connection per pass of the event loop (epoll is
 * level-triggered: what is left comes back next pass), so requests arriving
 * together are seen together: a worker filling a batch then knows they are
 * on the way (enclave batch_fill) instead of finding one request complete
 * and the others still unread in the kernel. */
static void on_readable(occ_net *n, hconn *h, uint8_t *buf, size_t cap)
{
    if (h->fd < 0)
        return;
    ssize_t r = recv(h->fd, buf, cap, 0);
    if (r > 0) {
        h->last_active = mono_ns();
        if (h->draining)
            return; /* discard: we are only waiting for the peer's EOF */
        pthread_mutex_lock(&h->mu);
        int closing = h->want_close;
        uint64_t id = h->id;
        pthread_mutex_unlock(&h->mu);
        if (!closing)
            n->ec->conn_data(n->ec->enclave, id, buf, (size_t)r, NULL);
        return;
    }
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return; /* level-triggered: an interrupted read comes back next pass */
    teardown(n, h); /* EOF or error */
}

/* Closes (after flushing) what the enclave asked to close; idle timeouts. */
static void housekeeping(occ_net *n, int idle_check)
{
    uint64_t now = mono_ns();
    for (uint32_t i = 0; i < n->n_slots; i++) {
        hconn *h = &n->conns[i];
        if (h->fd < 0)
            continue;
        int kill = 0;
        pthread_mutex_lock(&h->mu);
        if (h->want_close && !h->draining) {
            if (flush_locked(n, h))
                kill = 1;
            else if (h->out_off == h->out_len) {
                shutdown(h->fd, SHUT_WR);
                h->draining = 1;
                h->drain_deadline = now + DRAIN_NS;
            }
        } else if (h->draining && now > h->drain_deadline) {
            kill = 1;
        } else if (idle_check && now > h->last_active && now - h->last_active > n->idle_ns) {
            /* (last_active may be newer than now: workers update it) */
            kill = 1;
        }
        pthread_mutex_unlock(&h->mu);
        if (kill)
            teardown(n, h);
    }
}

typedef struct worker_arg {
    occ_net *n;
    int index;
} worker_arg;

static void *worker_main(void *p)
{
    worker_arg *w = p;
    occ_error e = {0};
    if (w->n->ec->run_worker(w->n->ec->enclave, w->index, &e))
        fprintf(stderr, "occ serve: worker %d stopped: %s\n", w->index, e.msg);
    return NULL;
}

occ_status occ_net_run(occ_net *n, const occ_ecalls *ec, occ_error *e)
{
    n->ec = ec;
    pthread_t *th = calloc((size_t)n->workers, sizeof *th);
    worker_arg *args = calloc((size_t)n->workers, sizeof *args);
    /* one receive buffer, handed to the enclave per recv: large enough that
     * a 600 KB request crosses in a few ecalls, not dozens */
    uint8_t *buf = malloc(RECV_BUF_SIZE);
    if (!th || !args || !buf) {
        free(th);
        free(args);
        free(buf);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    int started = 0;
    for (int i = 0; i < n->workers; i++) {
        args[i].n = n;
        args[i].index = i;
        if (pthread_create(&th[i], NULL, worker_main, &args[i]))
            break;
        started++;
    }
    occ_status st = started ? OCC_OK : occ_fail(e, OCC_ERR_INTERNAL, "cannot start worker threads");
    uint64_t last_idle = mono_ns();
    struct epoll_event evs[64];
    while (!st && !n->stop) {
        int k = epoll_wait(n->epfd, evs, 64, 100);
        if (k < 0 && errno != EINTR) {
            st = occ_fail(e, OCC_ERR_IO, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < k; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == TAG_LISTEN) {
                accept_all(n, n->lfd, 0);
            } else if (tag == TAG_METRICS) {
                accept_all(n, n->mfd, 1);
            } else if (tag == TAG_EVENT) {
                uint64_t v;
                ssize_t r = read(n->evfd, &v, sizeof v);
                (void)r;
            } else if (tag < n->n_slots) {
                hconn *h = &n->conns[tag];
                if (evs[i].events & EPOLLOUT) {
                    pthread_mutex_lock(&h->mu);
                    int bad = h->fd >= 0 && flush_locked(n, h);
                    pthread_mutex_unlock(&h->mu);
                    if (bad) {
                        teardown(n, h);
                        continue;
                    }
                }
                if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                    on_readable(n, h, buf, RECV_BUF_SIZE);
            }
        }
        uint64_t now = mono_ns();
        int idle = now - last_idle > 100000000u;
        if (idle)
            last_idle = now;
        housekeeping(n, idle);
    }
    ec->stop(ec->enclave);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (uint32_t i = 0; i < n->n_slots; i++)
        teardown(n, &n->conns[i]);
    free(th);
    free(args);
    free(buf);
    return st;
}
