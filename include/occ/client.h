/* Client-side helpers (untrusted side; also used by `occ run`). */
#ifndef OCC_CLIENT_H
#define OCC_CLIENT_H

#include <stddef.h>

#include "occ/model.h"

/* Decodes an image file (PNG, JPEG, BMP, ...; with stb_image), converts it to
 * the pack's channel order, resizes it to the pack's input size and applies
 * scale/mean/std, writing an NCHW float tensor of
 * pre->channels * pre->height * pre->width elements into out (caller
 * allocates). Refuses images larger than 16384x16384. */
occ_status occ_image_preprocess(const char *path, const occ_preproc *pre, float *out, size_t out_count,
                                occ_error *e) OCC_MUST_CHECK;

/* Same, from an encoded image in memory. */
occ_status occ_image_preprocess_mem(const unsigned char *buf, size_t size, const occ_preproc *pre, float *out,
                                    size_t out_count, occ_error *e) OCC_MUST_CHECK;

/* Indices of the k largest values of v (count elements), best first; ties
 * keep the lower index first. Returns the number written (min(k, count)). */
size_t occ_topk(const float *v, size_t count, size_t k, size_t *idx);

/* ---- the attested client (src/client/client.c) ----
 * Connects to an Occlumency server over TLS 1.3 and verifies its RA-TLS
 * certificate (quote, key binding, policy, root) inside the handshake:
 * when the certificate is refused the handshake is aborted and not one byte
 * of a request has been sent. Then HTTP/1.1 + KServe v2 requests. */
#include <stdint.h>

#include <openssl/x509.h>

#include "occ/attest.h"

typedef struct occ_client occ_client;

typedef struct occ_client_opts {
    const occ_attest_policy *policy; /* must pin the enclave and the model (occ_attest_policy_pinned) */
    X509 *root;                      /* the trust anchor (emulated: DIR/root.pem); NULL refuses */
    int64_t at;                      /* verification time; OCC_ATTEST_NOW */
    int timeout_ms;                  /* connect / each read; 0 = 30000 */
    const char *model;               /* the model the caller will use: with a policy's "models", only
                                        its entry is enforced in the handshake (NULL: every entry) */
    int insecure;                    /* accept a policy that pins no enclave or no model (NULL policy =
                                        the default one): any enclave the root vouches for */
} occ_client_opts;

/* url: https://HOST:PORT[/]. Fills *v in every case (v may be NULL).
 * OCC_ERR_ATTEST when the server's evidence is refused (reasons in v).
 * OCC_ERR_INVALID, before connecting, when the policy does not pin the
 * enclave and the model and o->insecure is not set. Every request on the
 * connection then checks the policy's "models" entry for the model it
 * names (occ_attest_policy_check_model): a request for a model the policy
 * does not bind to the attested list is refused before it is sent. */
occ_status occ_client_connect(const char *url, const occ_client_opts *o, occ_attest_verdict *v, occ_client **out,
                              occ_error *e) OCC_MUST_CHECK;
void occ_client_close(occ_client *c);
/* The verified server certificate (owned by c). */
X509 *occ_client_peer_cert(occ_client *c);
/* Wall time of TCP connect + handshake + verification, in ms. */
double occ_client_handshake_ms(const occ_client *c);

typedef struct occ_client_response {
    int status;
    char content_type[128];
    int64_t header_size; /* Inference-Header-Content-Length, -1 absent */
    uint8_t *body;       /* NUL-terminated (not counted); free with occ_client_response_free */
    size_t body_size;
} occ_client_response;

/* One request on the connection (keep-alive). headers: NULL or
 * NULL-terminated "Name: value" strings. */
occ_status occ_client_request(occ_client *c, const char *method, const char *path, const char *const *headers,
                              const void *body, size_t size, occ_client_response *r, occ_error *e) OCC_MUST_CHECK;
void occ_client_response_free(occ_client_response *r);

/* GET /v2/models/{name}/occ: what the client needs to prepare an input. */
typedef struct occ_client_model_info {
    char model_id[65];      /* hex */
    occ_preproc pre;
    uint32_t n_labels;
    char **labels;
    char input_name[256];
    int32_t ndim;
    int64_t dims[OCC_MAX_DIMS];
    size_t input_count;     /* elements */
    uint32_t input_dtype;   /* occ_dtype of the first input */
    /* every input and output: name, dtype, ndim, dims, count, size (data NULL) */
    size_t n_inputs, n_outputs;
    struct occ_client_tensor *inputs, *outputs;
} occ_client_model_info;
occ_status occ_client_model_info_get(occ_client *c, const char *model, occ_client_model_info *info,
                                     occ_error *e) OCC_MUST_CHECK;
void occ_client_model_info_free(occ_client_model_info *info);

typedef struct occ_client_tensor {
    char name[256];
    uint32_t dtype; /* occ_dtype (KServe FP32, FP64, FP16, BF16, INT8..INT64, UINT8..UINT64, BOOL) */
    int32_t ndim;
    int64_t dims[OCC_MAX_DIMS];
    size_t count;   /* elements */
    size_t size;    /* bytes: count * element size */
    void *data;     /* raw little-endian values of dtype */
} occ_client_tensor;

/* The KServe datatype of an occ_dtype ("FP32", "INT64", ...) and back;
 * NULL / 0 when there is none. */
const char *occ_client_datatype(uint32_t dtype);
uint32_t occ_client_dtype_of(const char *datatype);
size_t occ_client_dtype_size(uint32_t dtype);

/* POST /v2/models/{model}/infer with n typed inputs (name, dtype, shape,
 * data of size bytes each); binary = use the binary tensor extension both
 * ways (else JSON: INT64 printed exactly; an INT64 output beyond 2^53 in
 * magnitude cannot be read exactly from JSON and is refused). On a non-200
 * answer the server's {"error"} text is in e. */
occ_status occ_client_infer_tensors(occ_client *c, const char *model, const occ_client_tensor *inputs, size_t n,
                                    int binary, occ_client_tensor **outs, size_t *n_outs,
                                    occ_error *e) OCC_MUST_CHECK;
/* One FP32 input (occ_client_infer_tensors with one tensor). */
occ_status occ_client_infer(occ_client *c, const char *model, const char *input_name, const int64_t *dims,
                            int32_t ndim, const float *data, int binary, occ_client_tensor **outs, size_t *n_outs,
                            occ_error *e) OCC_MUST_CHECK;
void occ_client_tensors_free(occ_client_tensor *t, size_t n);

#endif
