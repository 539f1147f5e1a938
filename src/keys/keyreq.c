/* The broker's request parser and its decision (docs/keys.md). */
#include <limits.h>
#include <string.h>

#include <http_parser.h>

#include "occ/keys.h"

typedef struct req_state {
    char url[96];
    size_t url_len;
    int url_long, complete, body;
} req_state;

static int on_url(http_parser *p, const char *at, size_t len)
{
    req_state *r = p->data;
    if (len > sizeof r->url - 1 - r->url_len) {
        r->url_long = 1;
        return 1;
    }
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    r->url[r->url_len] = 0;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    (void)at;
    (void)len;
    ((req_state *)p->data)->body = 1;
    return 1;
}

static int on_complete(http_parser *p)
{
    ((req_state *)p->data)->complete = 1;
    return 1;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

occ_status occ_keyreq_parse(const uint8_t *buf, size_t size, int *complete, uint8_t id[32], occ_error *e)
{
    *complete = 0;
    memset(id, 0, 32);
    http_parser p;
    http_parser_settings s;
    req_state r = {0};
    http_parser_init(&p, HTTP_REQUEST);
    http_parser_settings_init(&s);
    s.on_url = on_url;
    s.on_body = on_body;
    s.on_message_complete = on_complete;
    p.data = &r;
    http_parser_execute(&p, &s, (const char *)buf, size);
    if (r.url_long)
        return occ_fail(e, OCC_ERR_FORMAT, "request path too long");
    if (r.body || (p.flags & F_CHUNKED) || (r.complete && p.content_length > 0 && p.content_length != ULLONG_MAX))
        return occ_fail(e, OCC_ERR_FORMAT, "a key request has no body");
    if (!r.complete) {
        if (HTTP_PARSER_ERRNO(&p) != HPE_OK)
            return occ_fail(e, OCC_ERR_FORMAT, "malformed HTTP: %s", http_errno_description(HTTP_PARSER_ERRNO(&p)));
        if (size >= OCC_KEYREQ_MAX)
            return occ_fail(e, OCC_ERR_FORMAT, "request head over %d bytes", OCC_KEYREQ_MAX);
        return OCC_OK;
    }
    if (p.method != HTTP_GET)
        return occ_fail(e, OCC_ERR_FORMAT, "method %s (only GET)", http_method_str((enum http_method)p.method));
    if (p.http_major != 1)
        return occ_fail(e, OCC_ERR_FORMAT, "HTTP/%u (only 1.x)", p.http_major);
    static const char prefix[] = "/v1/keys/";
    if (r.url_len != sizeof prefix - 1 + 64 || memcmp(r.url, prefix, sizeof prefix - 1))
        return occ_fail(e, OCC_ERR_FORMAT, "path '%.80s' is not /v1/keys/<model id: 64 hex>", r.url);
    for (int i = 0; i < 32; i++) {
        int hi = hexval(r.url[sizeof prefix - 1 + 2 * i]), lo = hexval(r.url[sizeof prefix + 2 * i]);
        if (hi < 0 || lo < 0) {
            memset(id, 0, 32);
            return occ_fail(e, OCC_ERR_FORMAT, "path '%.80s' is not /v1/keys/<model id: 64 hex>", r.url);
        }
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    *complete = 1;
    return OCC_OK;
}

occ_status occ_keys_authorize(const occ_attest_policy *policy, const occ_attest_verdict *v, const uint8_t id[32],
                              occ_error *e)
{
    char hex[65];
    occ_hex_encode(id, 32, hex);
    if (!v->accepted)
        return occ_fail(e, OCC_ERR_ATTEST, "the evidence was refused");
    /* The enclave asks only for a model it is attested to serve. */
    const char *name = NULL;
    if (v->models_bound) {
        for (size_t i = 0; i < v->model_count; i++)
            if (!memcmp(v->model_ids[i], id, 32))
                name = v->model_names[i];
        if (!name)
            return occ_fail(e, OCC_ERR_ATTEST, "the enclave's certificate does not bind model %s", hex);
    } else if (memcmp(v->report_data + 32, id, 32)) {
        return occ_fail(e, OCC_ERR_ATTEST, "the enclave's REPORTDATA does not bind model %s", hex);
    }
    if (policy->model_count) {
        if (!name)
            return occ_fail(e, OCC_ERR_ATTEST,
                            "the policy's \"models\" needs the enclave's (name, model id) list, which its "
                            "certificate does not carry");
        int found = 0;
        for (size_t i = 0; i < policy->model_count; i++)
            if (!strcmp(policy->model_names[i], name) && !memcmp(policy->model_ids[i], id, 32))
                found = 1;
        if (!found)
            return occ_fail(e, OCC_ERR_ATTEST, "the policy's \"models\" does not allow model %s under the name '%s'",
                            hex, name);
    }
    return OCC_OK;
}
