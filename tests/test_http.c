/* The enclave's HTTP/1.1 request framing: whole, byte by byte, pipelined,
 * chunked, every truncation, and each refusal with its status code. */
#include <stdint.h>
#include <string.h>

#include "enclave/http.h"
#include "test.h"

static const char REQ[] = "POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Inference-Header-Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde";

static void whole_and_per_byte(void)
{
    for (int per_byte = 0; per_byte < 2; per_byte++) {
        occ_http *h = NULL;
        occ_error e = {0};
        int hs = 0;
        CHECK(occ_http_new(1 << 20, &h, &e) == OCC_OK);
        size_t n = strlen(REQ);
        for (size_t i = 0; i < n; i++) {
            CHECK(!occ_http_ready(h));
            size_t len = per_byte ? 1 : n;
            CHECK(occ_http_feed(h, REQ + i, len, &hs, &e) == OCC_OK);
            if (i + len < n)
                CHECK(occ_http_partial(h));
            i += len - 1;
        }
        const occ_http_request *r = occ_http_ready(h);
        CHECK(r != NULL);
        if (r) {
            CHECK(!strcmp(r->method, "POST"));
            CHECK(!strcmp(r->path, "/v2/models/m/infer"));
            CHECK(!strcmp(r->content_type, "application/json"));
            CHECK(r->inference_header_length == 3);
            CHECK(r->body_size == 5 && !memcmp(r->body, "abcde", 5));
            CHECK(r->keep_alive);
        }
        CHECK(!occ_http_partial(h));
        CHECK(occ_http_next(h, &hs, &e) == OCC_OK);
        CHECK(!occ_http_ready(h));
        occ_http_free(h);
    }
}

static void truncations_never_complete(void)
{
    size_t n = strlen(REQ);
    for (size_t cut = 0; cut < n; cut++) {
        occ_http *h = NULL;
        occ_error e = {0};
        int hs = 0;
        CHECK(occ_http_new(1 << 20, &h, &e) == OCC_OK);
        CHECK(occ_http_feed(h, REQ, cut, &hs, &e) == OCC_OK);
        CHECK(!occ_http_ready(h));
        occ_http_free(h);
    }
}

static void pipelined_in_order(void)
{
    const char two[] = "GET /a?x=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n";
    occ_http *h = NULL;
    occ_error e = {0};
    int hs = 0;
    CHECK(occ_http_new(1024, &h, &e) == OCC_OK);
    CHECK(occ_http_feed(h, two, strlen(two), &hs, &e) == OCC_OK);
    const occ_http_request *r = occ_http_ready(h);
    CHECK(r && !strcmp(r->path, "/a") && r->keep_alive);
    CHECK(occ_http_next(h, &hs, &e) == OCC_OK);
    r = occ_http_ready(h);
    CHECK(r && !strcmp(r->path, "/b") && !r->keep_alive);
    CHECK(occ_http_next(h, &hs, &e) == OCC_OK);
    CHECK(!occ_http_ready(h));
    occ_http_free(h);
}

static void chunked_body(void)
{
    const char c[] = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    occ_http *h = NULL;
    occ_error e = {0};
    int hs = 0;
    CHECK(occ_http_new(1024, &h, &e) == OCC_OK);
    for (size_t i = 0; i < strlen(c); i++)
        CHECK(occ_http_feed(h, c + i, 1, &hs, &e) == OCC_OK);
    const occ_http_request *r = occ_http_ready(h);
    CHECK(r && r->body_size == 5 && !memcmp(r->body, "abcde", 5));
    occ_http_free(h);
    /* chunked over the limit */
    CHECK(occ_http_new(4, &h, &e) == OCC_OK);
    CHECK(occ_http_feed(h, c, strlen(c), &hs, &e) != OCC_OK);
    CHECK(hs == 413);
    occ_http_free(h);
}

static int status_of(const char *req, size_t max_body)
{
    occ_http *h = NULL;
    occ_error e = {0};
    int hs = 0;
    if (occ_http_new(max_body, &h, &e))
        return -1;
    occ_status st = occ_http_feed(h, req, strlen(req), &hs, &e);
    int out = st ? hs : (occ_http_ready(h) ? 200 : 0);
    /* a failed parser stays failed */
    if (st) {
        int hs2 = 0;
        if (occ_http_feed(h, "GET / HTTP/1.1\r\n\r\n", 18, &hs2, &e) == OCC_OK || hs2 != hs)
            out = -2;
    }
    occ_http_free(h);
    return out;
}

static void refusals(void)
{
    CHECK(status_of("POST /x HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", 1000) == 413);
    CHECK(status_of("GARBAGE\r\n\r\n", 1000) == 400);
    CHECK(status_of("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 1000) == 400);
    CHECK(status_of("GET / HTTP/2.0\r\n\r\n", 1000) == 505);
    CHECK(status_of("POST /x HTTP/1.1\r\nInference-Header-Content-Length: x1\r\nContent-Length: 1\r\n\r\na", 100) == 400);
    CHECK(status_of("POST /x HTTP/1.1\r\nExpect: something\r\n\r\n", 100) == 417);
    CHECK(status_of("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 100) == 400);
    char big[12000];
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memset(big + 19, 'a', sizeof big - 19 - 5);
    memcpy(big + sizeof big - 5, "\r\n\r\n", 5);
    CHECK(status_of(big, 100) == 431);
    char url[3000] = "GET /";
    memset(url + 5, 'u', 2500);
    strcpy(url + 2505, " HTTP/1.1\r\n\r\n");
    CHECK(status_of(url, 100) == 414);
    CHECK(status_of("GET /ok HTTP/1.1\r\n\r\n", 100) == 200);
}

static void expect_continue(void)
{
    const char r[] = "POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    occ_http *h = NULL;
    occ_error e = {0};
    int hs = 0;
    CHECK(occ_http_new(100, &h, &e) == OCC_OK);
    CHECK(occ_http_feed(h, r, strlen(r), &hs, &e) == OCC_OK);
    CHECK(occ_http_take_expect_continue(h) == 1);
    CHECK(occ_http_take_expect_continue(h) == 0);
    CHECK(occ_http_feed(h, "ab", 2, &hs, &e) == OCC_OK);
    CHECK(occ_http_ready(h) != NULL);
    occ_http_free(h);
}

static void pipelined_cap(void)
{
    occ_http *h = NULL;
    occ_error e = {0};
    int hs = 0;
    CHECK(occ_http_new(100, &h, &e) == OCC_OK);
    CHECK(occ_http_feed(h, "GET / HTTP/1.1\r\n\r\n", 18, &hs, &e) == OCC_OK);
    CHECK(occ_http_ready(h) != NULL);
    static char junk[300000];
    memset(junk, 'G', sizeof junk);
    CHECK(occ_http_feed(h, junk, sizeof junk, &hs, &e) != OCC_OK && hs == 413);
    occ_http_free(h);
}

/* Many requests on one connection, each fed in a few pieces. */
static void long_connection(void)
{
    occ_http *h = NULL;
    occ_error e = {0};
    int hs = 0, done = 0;
    CHECK(occ_http_new(1 << 20, &h, &e) == OCC_OK);
    for (int i = 0; i < 20000; i++) {
        size_t n = strlen(REQ), cut = (size_t)(i % 7) * 13 % n;
        if (occ_http_feed(h, REQ, cut, &hs, &e) || occ_http_feed(h, REQ + cut, n - cut, &hs, &e)) {
            fprintf(stderr, "request %d: %d %s\n", i, hs, e.msg);
            break;
        }
        const occ_http_request *r = occ_http_ready(h);
        if (!r || r->body_size != 5)
            break;
        if (occ_http_next(h, &hs, &e))
            break;
        done++;
    }
    CHECK(done == 20000);
    occ_http_free(h);
}

/* A body read straight into place (occ_http_body_dest), in pieces, then a
 * pipelined request behind it: the same request as when fed from a buffer,
 * and no destination outside a Content-Length body. */
static void body_in_place(void)
{
    occ_http *h = NULL;
    occ_error e = {0};
    int hs = 0;
    size_t left = 0;
    CHECK(occ_http_new(1 << 20, &h, &e) == OCC_OK);
    CHECK(occ_http_body_dest(h, &left) == NULL && left == 0);
    size_t head = strlen(REQ) - 5;
    CHECK(occ_http_feed(h, REQ, head - 2, &hs, &e) == OCC_OK);
    CHECK(occ_http_body_dest(h, &left) == NULL); /* headers not complete */
    CHECK(occ_http_feed(h, REQ + head - 2, 2, &hs, &e) == OCC_OK);
    const char *body = "abcde";
    for (size_t at = 0; at < 5;) {
        uint8_t *d = occ_http_body_dest(h, &left);
        CHECK(d != NULL && left == 5 - at);
        if (!d)
            break;
        size_t n = at == 0 ? 2 : left; /* two pieces */
        memcpy(d, body + at, n);
        CHECK(occ_http_feed(h, d, n, &hs, &e) == OCC_OK);
        at += n;
    }
    const occ_http_request *r = occ_http_ready(h);
    CHECK(r != NULL && r->body_size == 5 && !memcmp(r->body, "abcde", 5));
    CHECK(occ_http_body_dest(h, &left) == NULL); /* complete */
    /* next: a GET (no body) pipelined behind a second POST's headers */
    CHECK(occ_http_next(h, &hs, &e) == OCC_OK);
    const char *get = "GET /v2 HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(occ_http_feed(h, get, strlen(get), &hs, &e) == OCC_OK);
    CHECK(occ_http_ready(h) != NULL);
    CHECK(occ_http_body_dest(h, &left) == NULL);
    CHECK(occ_http_feed(h, REQ, head, &hs, &e) == OCC_OK); /* staged behind the GET */
    CHECK(occ_http_body_dest(h, &left) == NULL);
    CHECK(occ_http_next(h, &hs, &e) == OCC_OK);
    uint8_t *d = occ_http_body_dest(h, &left);
    CHECK(d != NULL && left == 5);
    if (d) {
        memcpy(d, body, 5);
        CHECK(occ_http_feed(h, d, 5, &hs, &e) == OCC_OK);
    }
    r = occ_http_ready(h);
    CHECK(r != NULL && r->body_size == 5 && !memcmp(r->body, "abcde", 5));
    occ_http_free(h);
}

int main(void)
{
    RUN(long_connection);
    RUN(whole_and_per_byte);
    RUN(truncations_never_complete);
    RUN(pipelined_in_order);
    RUN(chunked_body);
    RUN(refusals);
    RUN(expect_continue);
    RUN(pipelined_cap);
    RUN(body_in_place);
    TEST_DONE();
}
