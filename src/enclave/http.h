/* HTTP/1.1 request framing inside the enclave (over Debian's http_parser).
 *
 * One occ_http per connection. Plaintext (decrypted TLS) is appended with
 * occ_http_feed(); parsing stops after each complete request so the server
 * can answer requests strictly in order (pipelined bytes stay buffered). The
 * server reads the request, answers, then calls occ_http_next().
 *
 * Limits: the body is refused before it arrives when Content-Length exceeds
 * the route's limit (at most max_body; 413), chunked bodies are cut there (413), headers beyond
 * http_parser's 80 KiB or a header value over 8 KiB are refused (431), bytes
 * buffered behind an unanswered request are capped. Never aborts on input. */
#ifndef OCC_ENCLAVE_HTTP_H
#define OCC_ENCLAVE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "occ/status.h"

#define OCC_HTTP_MAX_URL 2048
#define OCC_HTTP_MAX_VALUE 8192

typedef struct occ_http occ_http;

typedef struct occ_http_request {
    const char *method;         /* "GET", "POST", ... */
    char path[OCC_HTTP_MAX_URL]; /* without the query string */
    char content_type[128];
    int64_t inference_header_length; /* Inference-Header-Content-Length, -1 absent */
    int keep_alive;
    const uint8_t *body;        /* owned by the occ_http; valid until occ_http_next */
    size_t body_size;
} occ_http_request;

occ_status occ_http_new(size_t max_body, occ_http **out, occ_error *e) OCC_MUST_CHECK;
/* Optional hooks of the server (ctx passed back):
 *  - limit(method, path): the largest body this request may have (at most
 *    max_body), decided when its headers are complete: a larger
 *    Content-Length is refused at once (413), a chunked body when it
 *    crosses the limit;
 *  - reserve(delta): every byte of body and staging buffer this parser
 *    holds is charged (delta > 0) before it is allocated and returned
 *    (delta < 0) when freed; a refused charge answers 503.
 * Body buffers grow as the bytes arrive (doubling from 16 KiB), never to
 * the announced Content-Length at once; they are wiped when freed. */
void occ_http_set_hooks(occ_http *h, size_t (*limit)(void *ctx, const char *method, const char *path),
                        int (*reserve)(void *ctx, int64_t delta), void *ctx);
void occ_http_free(occ_http *h);

/* Appends bytes and parses until a request is complete or the bytes run out.
 * Returns OCC_OK, or an error with the HTTP status to answer in
 * *http_status (400, 413, 431, 505) and a message in e: the connection
 * must then be answered and closed. */
occ_status occ_http_feed(occ_http *h, const void *data, size_t size, int *http_status,
                         occ_error *e) OCC_MUST_CHECK;
/* The complete request, or NULL. */
const occ_http_request *occ_http_ready(const occ_http *h);
/* Drops the current request and parses what is buffered behind it. */
occ_status occ_http_next(occ_http *h, int *http_status, occ_error *e) OCC_MUST_CHECK;
/* 1 when part of a request has arrived but not all of it. */
int occ_http_partial(const occ_http *h);

/* While a Content-Length body is being read with nothing staged: where its
 * next bytes belong and (*size) how many are still to come, so the caller
 * can decrypt straight into the request body instead of through a buffer of
 * its own. Bytes written there must then be given to occ_http_feed(h, dest,
 * n) as usual (the parser sees they are already in place and does not copy
 * them). NULL (and *size 0) otherwise. */
uint8_t *occ_http_body_dest(occ_http *h, size_t *size);
/* 1 once (per request) when the client sent "Expect: 100-continue" and is
 * waiting for the interim response; clears the flag. */
int occ_http_take_expect_continue(occ_http *h);

/* Reason phrase of a status code ("OK", "Bad Request", ...). */
const char *occ_http_reason(int status);

#endif
