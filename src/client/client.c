/* The attested client (see include/occ/client.h). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <http_parser.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "occ/client.h"
#include "occ/half.h"
#include "occ/ratls.h"

#define MAX_RESPONSE (1ull << 31)
#define WRITE_BUFFER_SIZE (256 << 10)

struct occ_client {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    occ_ratls_verify_ctx vctx;
    occ_attest_policy policy;
    char host[256];
    char port[8];
    double handshake_ms;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static occ_status parse_url(const char *url, char *host, size_t hs, char *port, size_t ps, occ_error *e)
{
    if (strncmp(url, "https://", 8))
        return occ_fail(e, OCC_ERR_INVALID, "'%s': the server URL must start with https://", url);
    const char *h = url + 8, *end = h + strcspn(h, "/");
    const char *colon;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb)
            return occ_fail(e, OCC_ERR_INVALID, "'%s': bad IPv6 address", url);
        colon = rb[1] == ':' ? rb + 1 : NULL;
        if ((size_t)(rb - h - 1) >= hs)
            return occ_fail(e, OCC_ERR_INVALID, "'%s': host too long", url);
        memcpy(host, h + 1, (size_t)(rb - h - 1));
        host[rb - h - 1] = 0;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        const char *he = colon ? colon : end;
        if (he == h || (size_t)(he - h) >= hs)
            return occ_fail(e, OCC_ERR_INVALID, "'%s': no host", url);
        memcpy(host, h, (size_t)(he - h));
        host[he - h] = 0;
    }
    if (!colon) {
        snprintf(port, ps, "443");
    } else {
        size_t pl = (size_t)(end - colon - 1);
        if (!pl || pl >= ps)
            return occ_fail(e, OCC_ERR_INVALID, "'%s': bad port", url);
        memcpy(port, colon + 1, pl);
        port[pl] = 0;
        for (size_t i = 0; i < pl; i++)
            if (port[i] < '0' || port[i] > '9')
                return occ_fail(e, OCC_ERR_INVALID, "'%s': bad port", url);
    }
    return OCC_OK;
}

static occ_status tcp_connect(const char *host, const char *port, int timeout_ms, int *out, occ_error *e)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gr = getaddrinfo(host, port, &hints, &ai);
    if (gr)
        return occ_fail(e, OCC_ERR_IO, "cannot resolve %s: %s", host, gai_strerror(gr));
    int fd = -1, err = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return occ_fail(e, OCC_ERR_IO, "cannot connect to %s:%s: %s", host, port, strerror(err));
    *out = fd;
    return OCC_OK;
}

void occ_client_close(occ_client *c)
{
    if (!c)
        return;
    if (c->ssl) {
        (void)SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    ERR_clear_error();
    free(c);
}

occ_status occ_client_connect(const char *url, const occ_client_opts *o, occ_attest_verdict *v, occ_client **out,
                              occ_error *e)
{
    *out = NULL;
    if (v)
        memset(v, 0, sizeof *v);
    occ_client *c = calloc(1, sizeof *c);
    if (!c)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    c->fd = -1;
    occ_status st = parse_url(url, c->host, sizeof c->host, c->port, sizeof c->port, e);
    if (st)
        goto fail;
    if (o && o->policy)
        c->policy = *o->policy;
    else
        occ_attest_policy_default(&c->policy);
    char why[200];
    if (!occ_attest_policy_pinned(&c->policy, why, sizeof why) && !(o && o->insecure)) {
        st = occ_fail(e, OCC_ERR_INVALID, "refusing to trust %s: %s (pin them in the policy, or accept any "
                                          "enclave explicitly with --insecure)",
                      url, why);
        goto fail;
    }
    c->policy.use_model[0] = 0;
    if (o && o->model) {
        if (strlen(o->model) >= sizeof c->policy.use_model) {
            st = occ_fail(e, OCC_ERR_INVALID, "model name longer than %d bytes", OCC_MODEL_NAME_MAX);
            goto fail;
        }
        snprintf(c->policy.use_model, sizeof c->policy.use_model, "%s", o->model);
    }
    c->vctx.policy = &c->policy;
    c->vctx.root = o ? o->root : NULL;
    c->vctx.at = o ? o->at : OCC_ATTEST_NOW;
    int timeout = o && o->timeout_ms > 0 ? o->timeout_ms : 30000;
    double t0 = now_ms();
    if ((st = tcp_connect(c->host, c->port, timeout, &c->fd, e)))
        goto fail;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx || !SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION) || !(c->ssl = SSL_new(c->ctx)) ||
        !SSL_set_fd(c->ssl, c->fd)) {
        st = occ_fail(e, OCC_ERR_INTERNAL, "TLS setup failed");
        goto fail;
    }
    SSL_set_tlsext_host_name(c->ssl, c->host);
    if (occ_ratls_ssl_attach(c->ssl, &c->vctx) && (st = occ_fail(e, OCC_ERR_INTERNAL, "cannot attach the RA-TLS verifier")))
        goto fail;
    /* The verify callback accepts the certificate only when
     * occ_ratls_verify_cert accepts it: a refusal aborts the handshake, so
     * nothing is ever sent to an enclave the policy does not accept. */
    SSL_set_verify(c->ssl, SSL_VERIFY_PEER, occ_ratls_ssl_verify_cb);
    int r = SSL_connect(c->ssl);
    c->handshake_ms = now_ms() - t0;
    if (v)
        *v = c->vctx.verdict;
    if (r != 1) {
        ERR_clear_error();
        if (c->vctx.done && !c->vctx.verdict.accepted) {
            st = occ_fail(e, OCC_ERR_ATTEST, "server refused by the policy: %s",
                          c->vctx.verdict.reason_count ? c->vctx.verdict.reasons[0] : "not accepted");
        } else if (!c->vctx.done) {
            st = occ_fail(e, OCC_ERR_IO, "TLS handshake with %s:%s failed before the certificate was checked "
                                         "(not a TLS 1.3 server?)",
                          c->host, c->port);
        } else {
            st = occ_fail(e, OCC_ERR_IO, "TLS handshake with %s:%s failed", c->host, c->port);
        }
        goto fail;
    }
    if (!c->vctx.done || !c->vctx.verdict.accepted) { /* belt and braces */
        st = occ_fail(e, OCC_ERR_ATTEST, "server certificate was not verified");
        goto fail;
    }
    /* Requests go out through a write buffer, flushed once per request: a
     * 600 KB tensor leaves in a few large sends rather than one per 16 KB
     * TLS record (and the header and the body share a segment). */
    BIO *wb = BIO_new(BIO_f_buffer()), *sock = BIO_new_socket(c->fd, BIO_NOCLOSE);
    if (!wb || !sock || BIO_set_write_buffer_size(wb, WRITE_BUFFER_SIZE) != 1) {
        BIO_free(wb);
        BIO_free(sock);
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory for the TLS write buffer");
        goto fail;
    }
    SSL_set0_wbio(c->ssl, BIO_push(wb, sock));
    *out = c;
    return OCC_OK;
fail:
    occ_client_close(c);
    return st;
}

X509 *occ_client_peer_cert(occ_client *c)
{
    return SSL_get0_peer_certificate(c->ssl);
}

double occ_client_handshake_ms(const occ_client *c)
{
    return c->handshake_ms;
}

/* ---- HTTP ---- */

typedef struct rp {
    occ_client_response *r;
    char field[64];
    size_t field_len;
    int in_value;
    char value[256];
    size_t value_len;
    int done, oom;
    size_t cap;
} rp;

static void rp_header_done(rp *p)
{
    if (!p->in_value)
        return;
    p->field[p->field_len] = 0;
    p->value[p->value_len] = 0;
    if (!strcasecmp(p->field, "content-type"))
        snprintf(p->r->content_type, sizeof p->r->content_type, "%.127s", p->value);
    else if (!strcasecmp(p->field, "inference-header-content-length"))
        p->r->header_size = strtoll(p->value, NULL, 10);
    p->field_len = p->value_len = 0;
    p->in_value = 0;
}

static int rp_field(http_parser *hp, const char *at, size_t n)
{
    rp *p = hp->data;
    rp_header_done(p);
    size_t k = n < sizeof p->field - 1 - p->field_len ? n : sizeof p->field - 1 - p->field_len;
    memcpy(p->field + p->field_len, at, k);
    p->field_len += k;
    return 0;
}

static int rp_value(http_parser *hp, const char *at, size_t n)
{
    rp *p = hp->data;
    p->in_value = 1;
    size_t k = n < sizeof p->value - 1 - p->value_len ? n : sizeof p->value - 1 - p->value_len;
    memcpy(p->value + p->value_len, at, k);
    p->value_len += k;
    return 0;
}

static int rp_headers_complete(http_parser *hp)
{
    rp_header_done(hp->data);
    return 0;
}

static int rp_body(http_parser *hp, const char *at, size_t n)
{
    rp *p = hp->data;
    occ_client_response *r = p->r;
    if (r->body_size + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < r->body_size + n + 1)
            cap *= 2;
        if (cap > MAX_RESPONSE) {
            p->oom = 1;
            return -1;
        }
        uint8_t *b = realloc(r->body, cap);
        if (!b) {
            p->oom = 1;
            return -1;
        }
        r->body = b;
        p->cap = cap;
    }
    memcpy(r->body + r->body_size, at, n);
    r->body_size += n;
    return 0;
}

static int rp_complete(http_parser *hp)
{
    rp *p = hp->data;
    p->done = 1;
    p->r->status = (int)hp->status_code;
    http_parser_pause(hp, 1);
    return 0;
}

void occ_client_response_free(occ_client_response *r)
{
    if (!r)
        return;
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Sends a request whose body is b1 then b2 (either may be empty: a binary
 * tensor goes out from the caller's buffer, never copied into a body). */
static occ_status request_parts(occ_client *c, const char *method, const char *path, const char *const *headers,
                                const void *b1, size_t n1, const void *b2, size_t n2, occ_client_response *r,
                                occ_error *e)
{
    const void *body = b1 ? b1 : b2;
    size_t size = n1 + n2;
    memset(r, 0, sizeof *r);
    r->header_size = -1;
    char head[4096];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: occ-client\r\n", method, path,
                     c->host, c->port);
    if (body || !strcmp(method, "POST"))
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", size);
    for (size_t i = 0; headers && headers[i] && n < (int)sizeof head; i++)
        n += snprintf(head + n, sizeof head - (size_t)n, "%s\r\n", headers[i]);
    if (n + 3 > (int)sizeof head)
        return occ_fail(e, OCC_ERR_INVALID, "request headers too long");
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if (n1 > INT_MAX || n2 > INT_MAX)
        return occ_fail(e, OCC_ERR_INVALID, "request body too large");
    if (SSL_write(c->ssl, head, n) != n || (n1 && SSL_write(c->ssl, b1, (int)n1) != (int)n1) ||
        (n2 && SSL_write(c->ssl, b2, (int)n2) != (int)n2) || BIO_flush(SSL_get_wbio(c->ssl)) != 1) {
        ERR_clear_error();
        return occ_fail(e, OCC_ERR_IO, "cannot send the request (connection closed?)");
    }
    http_parser hp;
    http_parser_settings s;
    http_parser_init(&hp, HTTP_RESPONSE);
    http_parser_settings_init(&s);
    s.on_header_field = rp_field;
    s.on_header_value = rp_value;
    s.on_headers_complete = rp_headers_complete;
    s.on_body = rp_body;
    s.on_message_complete = rp_complete;
    rp p = {0};
    p.r = r;
    hp.data = &p;
    char buf[16384];
    while (!p.done) {
        int k = SSL_read(c->ssl, buf, sizeof buf);
        if (k <= 0) {
            int err = SSL_get_error(c->ssl, k);
            ERR_clear_error();
            /* EOF ends a body without a length */
            if (err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL)
                http_parser_execute(&hp, &s, NULL, 0);
            if (p.done)
                break;
            occ_client_response_free(r);
            return occ_fail(e, OCC_ERR_IO, "the server closed the connection without a complete answer");
        }
        size_t used = http_parser_execute(&hp, &s, buf, (size_t)k);
        if (HTTP_PARSER_ERRNO(&hp) != HPE_OK && HTTP_PARSER_ERRNO(&hp) != HPE_PAUSED) {
            occ_client_response_free(r);
            return occ_fail(e, p.oom ? OCC_ERR_NOMEM : OCC_ERR_FORMAT, "bad HTTP response: %s",
                            http_errno_description(HTTP_PARSER_ERRNO(&hp)));
        }
        (void)used; /* one request at a time: nothing follows the response */
    }
    if (!r->body) {
        r->body = calloc(1, 1);
        if (!r->body)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    r->body[r->body_size] = 0;
    return OCC_OK;
}

occ_status occ_client_request(occ_client *c, const char *method, const char *path, const char *const *headers,
                              const void *body, size_t size, occ_client_response *r, occ_error *e)
{
    return request_parts(c, method, path, headers, body, size, NULL, 0, r, e);
}

/* Takes {"error": "..."} out of a failed response. */
static occ_status http_error(const occ_client_response *r, const char *what, occ_error *e)
{
    cJSON *j = cJSON_ParseWithLength((const char *)r->body, r->body_size);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "error");
    occ_status st = occ_fail(e, r->status == 404 ? OCC_ERR_INVALID : OCC_ERR_IO, "%s: HTTP %d: %s", what, r->status,
                             cJSON_IsString(m) ? m->valuestring : "(no error message)");
    cJSON_Delete(j);
    return st;
}

void occ_client_model_info_free(occ_client_model_info *info)
{
    if (!info)
        return;
    for (uint32_t i = 0; info->labels && i < info->n_labels; i++)
        free(info->labels[i]);
    free(info->labels);
    free(info->inputs);
    free(info->outputs);
    memset(info, 0, sizeof *info);
}

static int shape_of(const cJSON *a, int32_t *ndim, int64_t *dims, size_t *count)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > OCC_MAX_DIMS)
        return -1;
    *ndim = 0;
    size_t c = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, a)
    {
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e12)
            return -1;
        dims[(*ndim)++] = (int64_t)d->valuedouble;
        if (c && (size_t)d->valuedouble > SIZE_MAX / 8 / c) /* elements of up to 8 bytes */
            return -1;
        c *= (size_t)d->valuedouble;
    }
    *count = c;
    return 0;
}

static const struct {
    const char *name;
    uint32_t dtype;
    size_t size;
} kdt[] = {{"FP32", OCC_DTYPE_FLOAT, 4}, {"INT64", OCC_DTYPE_INT64, 8}, {"INT32", OCC_DTYPE_INT32, 4},
           {"BOOL", OCC_DTYPE_BOOL, 1},  {"UINT8", OCC_DTYPE_UINT8, 1}, {"INT8", OCC_DTYPE_INT8, 1},
           {"FP16", OCC_DTYPE_FLOAT16, 2}, {"FP64", OCC_DTYPE_DOUBLE, 8}, {"INT16", OCC_DTYPE_INT16, 2},
           {"UINT16", OCC_DTYPE_UINT16, 2}, {"UINT32", OCC_DTYPE_UINT32, 4}, {"UINT64", OCC_DTYPE_UINT64, 8},
           {"BF16", OCC_DTYPE_BFLOAT16, 2}};

const char *occ_client_datatype(uint32_t dtype)
{
    for (size_t i = 0; i < sizeof kdt / sizeof kdt[0]; i++)
        if (kdt[i].dtype == (dtype ? dtype : OCC_DTYPE_FLOAT))
            return kdt[i].name;
    return NULL;
}

uint32_t occ_client_dtype_of(const char *datatype)
{
    for (size_t i = 0; datatype && i < sizeof kdt / sizeof kdt[0]; i++)
        if (!strcmp(kdt[i].name, datatype))
            return kdt[i].dtype;
    return 0;
}

size_t occ_client_dtype_size(uint32_t dtype)
{
    for (size_t i = 0; i < sizeof kdt / sizeof kdt[0]; i++)
        if (kdt[i].dtype == (dtype ? dtype : OCC_DTYPE_FLOAT))
            return kdt[i].size;
    return 0;
}

/* Element k of a typed buffer as a JSON value (INT64 printed exactly). */
static cJSON *json_value(uint32_t dt, const void *p, size_t k)
{
    char num[32];
    switch (dt) {
    case OCC_DTYPE_INT64: {
        /* beyond 2^53 a JSON number is not exact for the server's reader:
         * the decimal string it reads exactly */
        int64_t v = ((const int64_t *)p)[k];
        snprintf(num, sizeof num, "%lld", (long long)v);
        return v > -9007199254740992LL && v < 9007199254740992LL ? cJSON_CreateRaw(num) : cJSON_CreateString(num);
    }
    case OCC_DTYPE_INT32: return cJSON_CreateNumber((double)((const int32_t *)p)[k]);
    case OCC_DTYPE_INT8: return cJSON_CreateNumber((double)((const int8_t *)p)[k]);
    case OCC_DTYPE_UINT8: return cJSON_CreateNumber((double)((const uint8_t *)p)[k]);
    case OCC_DTYPE_BOOL: return cJSON_CreateBool(((const uint8_t *)p)[k] != 0);
    case OCC_DTYPE_FLOAT16: return cJSON_CreateNumber((double)occ_half_to_float(((const uint16_t *)p)[k]));
    case OCC_DTYPE_BFLOAT16: return cJSON_CreateNumber((double)occ_bf16_to_float(((const uint16_t *)p)[k]));
    case OCC_DTYPE_DOUBLE: return cJSON_CreateNumber(((const double *)p)[k]); /* 17 digits when needed */
    case OCC_DTYPE_INT16: return cJSON_CreateNumber((double)((const int16_t *)p)[k]);
    case OCC_DTYPE_UINT16: return cJSON_CreateNumber((double)((const uint16_t *)p)[k]);
    case OCC_DTYPE_UINT32: return cJSON_CreateNumber((double)((const uint32_t *)p)[k]);
    case OCC_DTYPE_UINT64: {
        uint64_t v = ((const uint64_t *)p)[k];
        snprintf(num, sizeof num, "%llu", (unsigned long long)v);
        return v < 9007199254740992ULL ? cJSON_CreateRaw(num) : cJSON_CreateString(num);
    }
    default: return cJSON_CreateNumber((double)((const float *)p)[k]);
    }
}

/* A JSON value into element k of a typed buffer; -1 when it does not fit. */
static int from_json(const cJSON *v, uint32_t dt, void *p, size_t k)
{
    if (dt == OCC_DTYPE_BOOL) {
        if (!cJSON_IsBool(v) && !cJSON_IsNumber(v))
            return -1;
        ((uint8_t *)p)[k] = cJSON_IsBool(v) ? (uint8_t)cJSON_IsTrue(v) : v->valuedouble != 0;
        return 0;
    }
    if (cJSON_IsString(v) && (dt == OCC_DTYPE_INT64 || dt == OCC_DTYPE_UINT64)) {
        /* a decimal string: exact over the whole range */
        const char *s = v->valuestring;
        char *end = NULL;
        size_t digits = strspn(s + (*s == '-' && dt == OCC_DTYPE_INT64), "0123456789");
        if (!digits || digits > 20 || s[(*s == '-') + digits])
            return -1;
        errno = 0;
        if (dt == OCC_DTYPE_INT64)
            ((int64_t *)p)[k] = (int64_t)strtoll(s, &end, 10);
        else
            ((uint64_t *)p)[k] = (uint64_t)strtoull(s, &end, 10);
        return errno || *end ? -1 : 0;
    }
    if (!cJSON_IsNumber(v)) {
        if (cJSON_IsNull(v) && occ_dtype_is_float(dt)) { /* NaN/Inf */
            if (dt == OCC_DTYPE_FLOAT)
                ((float *)p)[k] = NAN;
            else if (dt == OCC_DTYPE_DOUBLE)
                ((double *)p)[k] = NAN;
            else
                ((uint16_t *)p)[k] = dt == OCC_DTYPE_FLOAT16 ? 0x7e00 : 0x7fc0;
            return 0;
        }
        return -1;
    }
    double d = v->valuedouble;
    switch (dt) {
    case OCC_DTYPE_INT64:
        if (!(d > -9007199254740992.0 && d < 9007199254740992.0))
            return -1; /* not exact in JSON */
        ((int64_t *)p)[k] = (int64_t)d;
        return 0;
    case OCC_DTYPE_INT32: ((int32_t *)p)[k] = (int32_t)d; return 0;
    case OCC_DTYPE_INT8: ((int8_t *)p)[k] = (int8_t)d; return 0;
    case OCC_DTYPE_UINT8: ((uint8_t *)p)[k] = (uint8_t)d; return 0;
    case OCC_DTYPE_FLOAT16: ((uint16_t *)p)[k] = occ_double_to_half(d); return 0;
    case OCC_DTYPE_BFLOAT16: ((uint16_t *)p)[k] = occ_double_to_bf16(d); return 0;
    case OCC_DTYPE_DOUBLE: ((double *)p)[k] = d; return 0;
    case OCC_DTYPE_INT16:
        if (!(d >= -32768 && d <= 32767))
            return -1;
        ((int16_t *)p)[k] = (int16_t)d;
        return 0;
    case OCC_DTYPE_UINT16:
        if (!(d >= 0 && d <= 65535))
            return -1;
        ((uint16_t *)p)[k] = (uint16_t)d;
        return 0;
    case OCC_DTYPE_UINT32:
        if (!(d >= 0 && d <= 4294967295.0))
            return -1;
        ((uint32_t *)p)[k] = (uint32_t)d;
        return 0;
    case OCC_DTYPE_UINT64:
        if (!(d >= 0 && d < 9007199254740992.0))
            return -1; /* not exact in JSON */
        ((uint64_t *)p)[k] = (uint64_t)d;
        return 0;
    default: ((float *)p)[k] = (float)d; return 0;
    }
}

/* {"name", "datatype", "shape"} into t (data NULL); -1 when malformed. */
static int tensor_desc(const cJSON *o, occ_client_tensor *t)
{
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(o, "datatype");
    memset(t, 0, sizeof *t);
    if (!cJSON_IsString(nm) || strlen(nm->valuestring) >= sizeof t->name || !cJSON_IsString(dt) ||
        !(t->dtype = occ_client_dtype_of(dt->valuestring)) ||
        shape_of(cJSON_GetObjectItemCaseSensitive(o, "shape"), &t->ndim, t->dims, &t->count))
        return -1;
    snprintf(t->name, sizeof t->name, "%s", nm->valuestring);
    t->size = t->count * occ_client_dtype_size(t->dtype);
    return 0;
}

/* A request names a model: the policy's "models" entry for it must hold
 * for the attested list, and the name must be one the enclave can bind (a
 * plain URL path segment). Checked before anything is sent. */
static occ_status check_model(occ_client *c, const char *model, occ_error *e)
{
    if (!model || !occ_model_name_valid(model, strlen(model)))
        return occ_fail(e, OCC_ERR_INVALID, "model name '%.128s': 1..%d printable ASCII characters without spaces "
                                            "or / ? # %% \" \\",
                        model ? model : "", OCC_MODEL_NAME_MAX);
    return occ_attest_policy_check_model(&c->policy, &c->vctx.verdict, model, e);
}

occ_status occ_client_model_info_get(occ_client *c, const char *model, occ_client_model_info *info, occ_error *e)
{
    memset(info, 0, sizeof *info);
    occ_status cs = check_model(c, model, e);
    if (cs)
        return cs;
    char path[512];
    snprintf(path, sizeof path, "/v2/models/%s/occ", model);
    occ_client_response r;
    occ_status st = occ_client_request(c, "GET", path, NULL, NULL, 0, &r, e);
    if (st)
        return st;
    if (r.status != 200) {
        st = http_error(&r, "model info", e);
        occ_client_response_free(&r);
        return st;
    }
    cJSON *j = cJSON_ParseWithLength((const char *)r.body, r.body_size);
    occ_client_response_free(&r);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "model_id");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(j, "labels");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(j, "preprocessing");
    const cJSON *in0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "inputs"), 0);
    const cJSON *in_name = cJSON_GetObjectItemCaseSensitive(in0, "name");
    if (!cJSON_IsString(id) || strlen(id->valuestring) != 64 || !cJSON_IsString(in_name) ||
        strlen(in_name->valuestring) >= sizeof info->input_name ||
        shape_of(cJSON_GetObjectItemCaseSensitive(in0, "shape"), &info->ndim, info->dims, &info->input_count)) {
        cJSON_Delete(j);
        return occ_fail(e, OCC_ERR_FORMAT, "model info: unexpected answer from the server");
    }
    memcpy(info->model_id, id->valuestring, 65);
    /* the id the server reports for the name must be the one its
     * certificate binds to that name */
    const occ_attest_verdict *v = &c->vctx.verdict;
    for (size_t i = 0; v->models_bound && i < v->model_count; i++) {
        uint8_t got[32];
        if (strcmp(v->model_names[i], model))
            continue;
        if (occ_hex_decode(info->model_id, 64, got, 32) || CRYPTO_memcmp(got, v->model_ids[i], 32)) {
            cJSON_Delete(j);
            return occ_fail(e, OCC_ERR_ATTEST, "model info: the server reports model id %.16s... for '%s', its "
                                               "certificate binds another",
                            info->model_id, model);
        }
    }
    snprintf(info->input_name, sizeof info->input_name, "%s", in_name->valuestring);
    for (int io = 0; io < 2; io++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, io ? "outputs" : "inputs");
        int n = cJSON_GetArraySize(arr);
        occ_client_tensor *ts = n > 0 && n <= 4096 ? calloc((size_t)n, sizeof *ts) : NULL;
        const cJSON *o;
        int k = 0, bad = !ts;
        cJSON_ArrayForEach(o, arr)
        {
            if (bad || tensor_desc(o, &ts[k++]))
                bad = 1;
        }
        if (bad) {
            free(ts);
            cJSON_Delete(j);
            occ_client_model_info_free(info);
            return occ_fail(e, OCC_ERR_FORMAT, "model info: unexpected %s in the server's answer",
                            io ? "outputs" : "inputs");
        }
        *(io ? &info->outputs : &info->inputs) = ts;
        *(io ? &info->n_outputs : &info->n_inputs) = (size_t)n;
    }
    info->input_dtype = info->inputs[0].dtype;
    if (cJSON_IsArray(labels)) {
        int n = cJSON_GetArraySize(labels);
        info->labels = calloc((size_t)n + 1, sizeof *info->labels);
        const cJSON *l;
        cJSON_ArrayForEach(l, labels)
        {
            if (info->labels)
                info->labels[info->n_labels++] = strdup(cJSON_IsString(l) ? l->valuestring : "");
        }
    }
    if (cJSON_IsObject(pre)) {
        occ_preproc *p = &info->pre;
        const cJSON *co = cJSON_GetObjectItemCaseSensitive(pre, "channel_order");
        const cJSON *mean = cJSON_GetObjectItemCaseSensitive(pre, "mean"), *sd = cJSON_GetObjectItemCaseSensitive(pre, "std");
        p->present = 1;
        p->height = (int32_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(pre, "height"));
        p->width = (int32_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(pre, "width"));
        p->channels = (int32_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(pre, "channels"));
        p->scale = (float)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(pre, "scale"));
        if (cJSON_IsString(co))
            snprintf(p->channel_order, sizeof p->channel_order, "%s", co->valuestring);
        for (int k = 0; k < 4 && k < p->channels; k++) {
            p->mean[k] = (float)cJSON_GetNumberValue(cJSON_GetArrayItem(mean, k));
            p->std[k] = (float)cJSON_GetNumberValue(cJSON_GetArrayItem(sd, k));
        }
        if (p->channels < 1 || p->channels > 4 || p->height < 1 || p->width < 1 || isnan(p->scale))
            p->present = 0;
    }
    cJSON_Delete(j);
    return OCC_OK;
}

void occ_client_tensors_free(occ_client_tensor *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        free(t[i].data);
    free(t);
}

occ_status occ_client_infer(occ_client *c, const char *model, const char *input_name, const int64_t *dims,
                            int32_t ndim, const float *data, int binary, occ_client_tensor **outs, size_t *n_outs,
                            occ_error *e)
{
    occ_client_tensor t;
    memset(&t, 0, sizeof t);
    if (ndim < 0 || ndim > OCC_MAX_DIMS || strlen(input_name) >= sizeof t.name)
        return occ_fail(e, OCC_ERR_INVALID, "infer: bad input description");
    snprintf(t.name, sizeof t.name, "%s", input_name);
    t.dtype = OCC_DTYPE_FLOAT;
    t.ndim = ndim;
    t.count = 1;
    for (int32_t i = 0; i < ndim; i++) {
        t.dims[i] = dims[i];
        t.count *= (size_t)dims[i];
    }
    t.size = t.count * 4;
    t.data = (void *)(uintptr_t)data; /* only read */
    return occ_client_infer_tensors(c, model, &t, 1, binary, outs, n_outs, e);
}

occ_status occ_client_infer_tensors(occ_client *c, const char *model, const occ_client_tensor *inputs, size_t n_in,
                                    int binary, occ_client_tensor **outs, size_t *n_outs, occ_error *e)
{
    *outs = NULL;
    *n_outs = 0;
    occ_status cs = check_model(c, model, e);
    if (cs)
        return cs;
    cJSON *root = cJSON_CreateObject();
    cJSON *ins = cJSON_AddArrayToObject(root, "inputs");
    size_t bin_total = 0;
    for (size_t k = 0; k < n_in; k++) {
        const occ_client_tensor *x = &inputs[k];
        const char *dtn = occ_client_datatype(x->dtype);
        if (!dtn || x->size != x->count * occ_client_dtype_size(x->dtype)) {
            cJSON_Delete(root);
            return occ_fail(e, OCC_ERR_INVALID, "infer: input '%.64s' has no KServe datatype or a wrong size",
                            x->name);
        }
        cJSON *in = cJSON_CreateObject();
        cJSON_AddItemToArray(ins, in);
        cJSON_AddStringToObject(in, "name", x->name);
        cJSON_AddStringToObject(in, "datatype", dtn);
        cJSON *shape = cJSON_AddArrayToObject(in, "shape");
        for (int32_t i = 0; i < x->ndim; i++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)x->dims[i]));
        if (binary) {
            cJSON *p = cJSON_AddObjectToObject(in, "parameters");
            cJSON_AddNumberToObject(p, "binary_data_size", (double)x->size);
            bin_total += x->size;
        } else {
            cJSON *d = cJSON_AddArrayToObject(in, "data");
            for (size_t i = 0; d && i < x->count; i++)
                cJSON_AddItemToArray(d, json_value(x->dtype, x->data, i));
        }
    }
    if (binary) {
        cJSON *rp = cJSON_AddObjectToObject(root, "parameters");
        cJSON_AddBoolToObject(rp, "binary_data_output", 1);
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    size_t jn = strlen(json);
    /* the binary tensors back to back after the JSON header (one input: sent from where it is) */
    uint8_t *bin = NULL;
    const void *tail = NULL;
    if (binary && n_in == 1) {
        tail = inputs[0].data;
    } else if (binary && bin_total) {
        bin = malloc(bin_total);
        if (!bin) {
            free(json);
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        }
        size_t off = 0;
        for (size_t k = 0; k < n_in; k++) {
            memcpy(bin + off, inputs[k].data, inputs[k].size);
            off += inputs[k].size;
        }
        tail = bin;
    }
    char ihcl[64];
    snprintf(ihcl, sizeof ihcl, "Inference-Header-Content-Length: %zu", jn);
    const char *hdrs[] = {binary ? "Content-Type: application/octet-stream" : "Content-Type: application/json",
                          binary ? ihcl : NULL, NULL};
    char path[512];
    snprintf(path, sizeof path, "/v2/models/%s/infer", model);
    occ_client_response r;
    occ_status st = request_parts(c, "POST", path, hdrs, json, jn, binary ? tail : NULL, binary ? bin_total : 0, &r, e);
    free(json);
    free(bin);
    if (st)
        return st;
    if (r.status != 200) {
        st = http_error(&r, "infer", e);
        occ_client_response_free(&r);
        return st;
    }
    size_t js = r.header_size >= 0 ? (size_t)r.header_size : r.body_size;
    if (js > r.body_size) {
        occ_client_response_free(&r);
        return occ_fail(e, OCC_ERR_FORMAT, "infer: Inference-Header-Content-Length beyond the body");
    }
    cJSON *j = cJSON_ParseWithLength((const char *)r.body, js);
    const cJSON *oa = cJSON_GetObjectItemCaseSensitive(j, "outputs");
    int n = cJSON_GetArraySize(oa);
    occ_client_tensor *t = n > 0 ? calloc((size_t)n, sizeof *t) : NULL;
    size_t off = js;
    st = (n > 0 && t) ? OCC_OK : occ_fail(e, OCC_ERR_FORMAT, "infer: no outputs in the answer");
    for (int i = 0; !st && i < n; i++) {
        const cJSON *o = cJSON_GetArrayItem(oa, i);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "parameters");
        const cJSON *bds = p ? cJSON_GetObjectItemCaseSensitive(p, "binary_data_size") : NULL;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "data");
        if (tensor_desc(o, &t[i])) {
            st = occ_fail(e, OCC_ERR_FORMAT, "infer: malformed output %d", i);
            break;
        }
        t[i].data = malloc(t[i].size ? t[i].size : 1);
        if (!t[i].data) {
            st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
            break;
        }
        if (bds) {
            if (!cJSON_IsNumber(bds) || bds->valuedouble != (double)t[i].size || r.body_size - off < t[i].size) {
                st = occ_fail(e, OCC_ERR_FORMAT, "infer: bad binary output '%s'", t[i].name);
                break;
            }
            memcpy(t[i].data, r.body + off, t[i].size);
            off += t[i].size;
        } else {
            if (!cJSON_IsArray(d) || (size_t)cJSON_GetArraySize(d) != t[i].count) {
                st = occ_fail(e, OCC_ERR_FORMAT, "infer: output '%s' has the wrong number of values", t[i].name);
                break;
            }
            size_t k = 0;
            const cJSON *v;
            cJSON_ArrayForEach(v, d)
            {
                if (!st && from_json(v, t[i].dtype, t[i].data, k++))
                    st = occ_fail(e, OCC_ERR_FORMAT,
                                  "infer: output '%s': value %zu is not a %s JSON value this client reads exactly "
                                  "(an INT64 or UINT64 number beyond 2^53: use binary outputs)",
                                  t[i].name, k - 1, occ_client_datatype(t[i].dtype));
            }
        }
    }
    cJSON_Delete(j);
    occ_client_response_free(&r);
    if (st) {
        occ_client_tensors_free(t, t ? (size_t)n : 0);
        return st;
    }
    *outs = t;
    *n_outs = (size_t)n;
    return OCC_OK;
}
