/* HTTP/1.1 request framing over http_parser (see http.h). */
#include "occ/crypto.h"
#include "enclave/http.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <openssl/crypto.h>

/* Bytes that may wait behind a request that has not been answered yet. */
#define OCC_HTTP_MAX_PIPELINED (256u * 1024u)

struct occ_http {
    http_parser p;
    http_parser_settings s;
    size_t max_body;
    /* bytes not yet given to the parser (only behind a complete request) */
    uint8_t *in;
    size_t in_len, in_off, in_cap;
    /* the message being parsed */
    int in_message, complete, failed, started;
    int err_status;
    char err_msg[200];
    char url[OCC_HTTP_MAX_URL];
    size_t url_len;
    char field[64];
    size_t field_len;
    char value[OCC_HTTP_MAX_VALUE];
    size_t value_len;
    int have_header, last_was_value;
    int expect_continue;
    uint8_t *body;
    size_t body_len, body_cap;
    int body_sized;         /* a Content-Length body is being read (not chunked) */
    size_t body_limit;      /* this request's body limit (the route's, at most max_body) */
    size_t body_total;      /* its Content-Length (sized bodies) */
    occ_http_request req;
    /* the server's limits and memory account (occ_http_set_hooks) */
    size_t (*limit_fn)(void *ctx, const char *method, const char *path);
    int (*reserve_fn)(void *ctx, int64_t delta);
    void *hook_ctx;
    size_t reserved;        /* bytes of body + staging buffers charged to the account */
};

/* Charges (delta > 0) or returns (delta < 0) bytes to the server's account;
 * -1 when the charge is refused. */
static int charge(occ_http *h, int64_t delta)
{
    if (!delta)
        return 0;
    if (h->reserve_fn && h->reserve_fn(h->hook_ctx, delta))
        return -1;
    h->reserved = (size_t)((int64_t)h->reserved + delta);
    return 0;
}

/* Moves buf[0, len) into a buffer of cap bytes (charged first), wiping and
 * freeing the old one: request bytes are the client's secrets. */
static int resize_buf(occ_http *h, uint8_t **buf, size_t *bcap, size_t len, size_t cap)
{
    if (charge(h, (int64_t)cap - (int64_t)*bcap))
        return -1;
    uint8_t *b = cap ? malloc(cap) : NULL;
    if (cap && !b) {
        (void)charge(h, (int64_t)*bcap - (int64_t)cap);
        return -1;
    }
    if (len)
        memcpy(b, *buf, len);
    if (*buf) {
        occ_wipe(*buf, *bcap);
        free(*buf);
    }
    *buf = b;
    *bcap = cap;
    return 0;
}

/* Makes room for `need` body bytes: grows as bytes arrive (fourfold, from
 * 64 KiB: a 600 KB image body is copied twice, 320 KiB in all, not six
 * times), never beyond what this request may send. */
static int body_grow(occ_http *h, size_t need)
{
    if (need <= h->body_cap)
        return 0;
    size_t most = h->body_sized ? h->body_total : h->body_limit;
    size_t cap = h->body_cap ? h->body_cap * 4 : 65536;
    if (cap < need)
        cap = need;
    if (cap > most)
        cap = most > need ? most : need;
    return resize_buf(h, &h->body, &h->body_cap, h->body_len, cap);
}

static int fail_msg(occ_http *h, int status, const char *msg)
{
    if (!h->err_status) {
        h->err_status = status;
        snprintf(h->err_msg, sizeof h->err_msg, "%s", msg);
    }
    return -1;
}

static int on_message_begin(http_parser *p)
{
    occ_http *h = p->data;
    h->in_message = 1;
    h->url_len = 0;
    h->field_len = h->value_len = 0;
    h->have_header = h->last_was_value = 0;
    h->expect_continue = 0;
    h->body_len = 0;
    h->body_sized = 0;
    h->body_total = 0;
    h->body_limit = h->max_body;
    memset(&h->req, 0, sizeof h->req);
    h->req.inference_header_length = -1;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    occ_http *h = p->data;
    if (len >= sizeof h->url - h->url_len)
        return fail_msg(h, 414, "request target too long");
    memcpy(h->url + h->url_len, at, len);
    h->url_len += len;
    h->url[h->url_len] = 0;
    return 0;
}

static int parse_decimal(const char *s, size_t n, int64_t *out)
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    if (!n || n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int finish_header(occ_http *h)
{
    if (!h->have_header)
        return 0;
    h->have_header = 0;
    h->field[h->field_len < sizeof h->field ? h->field_len : sizeof h->field - 1] = 0;
    h->value[h->value_len] = 0;
    const char *f = h->field, *v = h->value;
    if (!strcasecmp(f, "content-type")) {
        size_t n = h->value_len < sizeof h->req.content_type - 1 ? h->value_len : sizeof h->req.content_type - 1;
        memcpy(h->req.content_type, v, n);
        h->req.content_type[n] = 0;
    } else if (!strcasecmp(f, "inference-header-content-length")) {
        int64_t x;
        if (h->req.inference_header_length >= 0 || parse_decimal(v, h->value_len, &x))
            return fail_msg(h, 400, "bad Inference-Header-Content-Length");
        h->req.inference_header_length = x;
    } else if (!strcasecmp(f, "expect")) {
        if (!strcasecmp(v, "100-continue"))
            h->expect_continue = 1;
        else
            return fail_msg(h, 417, "only 'Expect: 100-continue' is supported");
    }
    h->field_len = h->value_len = 0;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    occ_http *h = p->data;
    if (h->last_was_value) {
        if (finish_header(h))
            return -1;
        h->last_was_value = 0;
    }
    h->have_header = 1;
    /* Long names are kept truncated (and then match nothing we use). */
    size_t room = sizeof h->field - 1 - (h->field_len < sizeof h->field - 1 ? h->field_len : sizeof h->field - 1);
    size_t n = len < room ? len : room;
    memcpy(h->field + h->field_len, at, n);
    h->field_len += n;
    if (n < len)
        h->field_len = sizeof h->field; /* marks truncation: no match */
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    occ_http *h = p->data;
    h->last_was_value = 1;
    if (len >= sizeof h->value - h->value_len)
        return fail_msg(h, 431, "header value too long");
    memcpy(h->value + h->value_len, at, len);
    h->value_len += len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    occ_http *h = p->data;
    if (finish_header(h))
        return -1;
    if (p->http_major != 1)
        return fail_msg(h, 505, "only HTTP/1.x is supported");
    /* the route decides how large a body may be (an inference: what its
     * model's inputs need); nothing is allocated for it yet */
    h->body_limit = h->max_body;
    if (h->limit_fn) {
        size_t n = strcspn(h->url, "?#");
        char c = h->url[n];
        h->url[n] = 0;
        size_t lim = h->limit_fn(h->hook_ctx, http_method_str((enum http_method)p->method), h->url);
        h->url[n] = c;
        if (lim < h->body_limit)
            h->body_limit = lim;
    }
    if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX && p->content_length > 0) {
        if (p->content_length > h->body_limit) {
            char m[160];
            snprintf(m, sizeof m, "request body of %llu bytes is over the limit of %zu bytes for %.40s",
                     (unsigned long long)p->content_length, h->body_limit, h->url);
            return fail_msg(h, 413, m);
        }
        h->body_total = (size_t)p->content_length;
        h->body_sized = 1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    occ_http *h = p->data;
    if (len > h->body_limit - h->body_len) {
        char m[160];
        snprintf(m, sizeof m, "request body is over the limit of %zu bytes", h->body_limit);
        return fail_msg(h, 413, m);
    }
    if ((const uint8_t *)at == h->body + h->body_len && h->body_len + len <= h->body_cap) {
        h->body_len += len; /* read there by occ_http_body_dest */
        return 0;
    }
    if (body_grow(h, h->body_len + len))
        return fail_msg(h, 503, "server busy: no request memory left for the body, retry later");
    memcpy(h->body + h->body_len, at, len);
    h->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    occ_http *h = p->data;
    if (p->upgrade)
        return fail_msg(h, 400, "protocol upgrade is not supported");
    h->in_message = 0;
    h->started = 0;
    h->body_sized = 0;
    h->complete = 1;
    h->req.method = http_method_str((enum http_method)p->method);
    size_t n = strcspn(h->url, "?#");
    memcpy(h->req.path, h->url, n);
    h->req.path[n] = 0;
    h->req.keep_alive = http_should_keep_alive(p);
    h->req.body = h->body;
    h->req.body_size = h->body_len;
    http_parser_pause(p, 1);
    return 0;
}

occ_status occ_http_new(size_t max_body, occ_http **out, occ_error *e)
{
    *out = NULL;
    occ_http *h = calloc(1, sizeof *h);
    if (!h)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
    http_parser_settings_init(&h->s);
    h->s.on_message_begin = on_message_begin;
    h->s.on_url = on_url;
    h->s.on_header_field = on_header_field;
    h->s.on_header_value = on_header_value;
    h->s.on_headers_complete = on_headers_complete;
    h->s.on_body = on_body;
    h->s.on_message_complete = on_message_complete;
    h->max_body = max_body;
    h->req.inference_header_length = -1;
    *out = h;
    return OCC_OK;
}

void occ_http_set_hooks(occ_http *h, size_t (*limit)(void *ctx, const char *method, const char *path),
                        int (*reserve)(void *ctx, int64_t delta), void *ctx)
{
    h->limit_fn = limit;
    h->reserve_fn = reserve;
    h->hook_ctx = ctx;
}

void occ_http_free(occ_http *h)
{
    if (!h)
        return;
    (void)resize_buf(h, &h->in, &h->in_cap, 0, 0);
    (void)resize_buf(h, &h->body, &h->body_cap, 0, 0);
    occ_wipe(h->value, sizeof h->value);
    occ_wipe(h->url, sizeof h->url);
    free(h);
}

/* Runs the parser over buf[0, len) until a request completes, it fails or
 * the bytes run out; *used = bytes consumed. */
static void parse_buf(occ_http *h, const uint8_t *buf, size_t len, size_t *used)
{
    size_t off = 0;
    while (!h->complete && !h->failed && off < len) {
        size_t avail = len - off;
        size_t n = http_parser_execute(&h->p, &h->s, (const char *)buf + off, avail);
        enum http_errno err = HTTP_PARSER_ERRNO(&h->p);
        if (err == HPE_PAUSED) {
            off += n;
            break;
        }
        if (n)
            h->started = 1;
        if (err != HPE_OK || (n < avail && !h->complete)) {
            h->failed = 1;
            if (!h->err_status) {
                h->err_status = 400;
                snprintf(h->err_msg, sizeof h->err_msg, "malformed HTTP request: %s",
                         http_errno_description(err));
            }
            break;
        }
        off += n;
    }
    *used = off;
}

static occ_status parse(occ_http *h, int *http_status, occ_error *e)
{
    size_t used = 0;
    parse_buf(h, h->in + h->in_off, h->in_len - h->in_off, &used);
    h->in_off += used;
    if (h->in_off == h->in_len)
        h->in_off = h->in_len = 0;
    if (h->failed) {
        *http_status = h->err_status;
        return occ_fail(e, OCC_ERR_FORMAT, "%s", h->err_msg);
    }
    return OCC_OK;
}

occ_status occ_http_feed(occ_http *h, const void *data, size_t size, int *http_status, occ_error *e)
{
    *http_status = 0;
    if (h->failed) {
        *http_status = h->err_status;
        return occ_fail(e, OCC_ERR_FORMAT, "%s", h->err_msg);
    }
    if (!size)
        return OCC_OK;
    if (h->in_off == h->in_len && !h->complete) {
        /* nothing staged: parse the caller's bytes where they are (a body
         * is copied once, into the request) and stage only what is left */
        size_t used = 0;
        parse_buf(h, data, size, &used);
        if (h->failed) {
            *http_status = h->err_status;
            return occ_fail(e, OCC_ERR_FORMAT, "%s", h->err_msg);
        }
        data = (const uint8_t *)data + used;
        size -= used;
        if (!size)
            return OCC_OK;
    }
    if (h->in_off) {
        memmove(h->in, h->in + h->in_off, h->in_len - h->in_off);
        h->in_len -= h->in_off;
        h->in_off = 0;
    }
    if (h->complete && h->in_len + size > OCC_HTTP_MAX_PIPELINED) {
        h->failed = 1;
        h->err_status = 413;
        snprintf(h->err_msg, sizeof h->err_msg, "too many pipelined bytes behind an unanswered request");
        *http_status = 413;
        return occ_fail(e, OCC_ERR_FORMAT, "%s", h->err_msg);
    }
    if (h->in_len + size > h->in_cap) {
        size_t cap = h->in_cap ? h->in_cap : 16384;
        while (cap < h->in_len + size)
            cap *= 2;
        if (resize_buf(h, &h->in, &h->in_cap, h->in_len, cap)) {
            h->failed = 1;
            h->err_status = 503;
            snprintf(h->err_msg, sizeof h->err_msg, "server busy: no request memory left, retry later");
            *http_status = 503;
            return occ_fail(e, OCC_ERR_NOMEM, "%s", h->err_msg);
        }
    }
    memcpy(h->in + h->in_len, data, size);
    h->in_len += size;
    return parse(h, http_status, e);
}

const occ_http_request *occ_http_ready(const occ_http *h)
{
    return h->complete && !h->failed ? &h->req : NULL;
}

occ_status occ_http_next(occ_http *h, int *http_status, occ_error *e)
{
    *http_status = 0;
    if (!h->complete)
        return OCC_OK;
    h->complete = 0;
    /* the answered body is wiped; one of more than 64 KiB is not held
     * between requests (nor charged) */
    if (h->body_cap > (64u << 10))
        (void)resize_buf(h, &h->body, &h->body_cap, 0, 0);
    else if (h->body_len)
        occ_wipe(h->body, h->body_len);
    h->body_len = 0;
    if (h->in_cap > (64u << 10) && h->in_off == h->in_len)
        (void)resize_buf(h, &h->in, &h->in_cap, 0, 0);
    memset(&h->req, 0, sizeof h->req);
    h->req.inference_header_length = -1;
    http_parser_pause(&h->p, 0);
    return parse(h, http_status, e);
}

uint8_t *occ_http_body_dest(occ_http *h, size_t *size)
{
    *size = 0;
    /* inside a Content-Length body (http_parser counts down what is left in
     * p.content_length), nothing staged ahead of it */
    if (!h->body_sized || !h->in_message || h->complete || h->failed || h->in_off != h->in_len ||
        HTTP_PARSER_ERRNO(&h->p) != HPE_OK || h->p.content_length == 0 || h->p.content_length == ULLONG_MAX ||
        h->p.content_length > h->body_total - h->body_len)
        return NULL;
    /* the buffer grows as the body arrives: when it is full (body_grow) */
    if (h->body_len == h->body_cap && body_grow(h, h->body_len + 1))
        return NULL; /* the bytes then go through occ_http_feed, which answers 503 */
    size_t room = h->body_cap - h->body_len;
    *size = (size_t)h->p.content_length < room ? (size_t)h->p.content_length : room;
    return h->body + h->body_len;
}

int occ_http_partial(const occ_http *h)
{
    return !h->complete && (h->in_message || h->started || h->failed);
}

int occ_http_take_expect_continue(occ_http *h)
{
    int x = h->expect_continue && h->in_message;
    h->expect_continue = 0;
    return x;
}

const char *occ_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
    }
}
