/* Request memory: the enclave-wide account (bodies, staging, jobs, JSON
 * trees) and the jobs charged to it. */
#include "occ/crypto.h"
#include "enclave/server_int.h"

/* Charges (delta > 0) or returns request memory held by c; -1 when the
 * enclave-wide budget would be exceeded (the caller answers 503). */
int occ_srv_mem_charge(occ_enclave *enc, conn *c, int64_t delta)
{
    pthread_mutex_lock(&enc->mem_mu);
    size_t old = c->held, now = (size_t)((int64_t)old + delta);
    size_t oc = old > REQ_FREE_PER_CONN ? old - REQ_FREE_PER_CONN : 0;
    size_t nc = now > REQ_FREE_PER_CONN ? now - REQ_FREE_PER_CONN : 0;
    if (nc > oc && (nc - oc > enc->req_budget || enc->req_used > enc->req_budget - (nc - oc))) {
        enc->req_refused++;
        pthread_mutex_unlock(&enc->mem_mu);
        return -1;
    }
    enc->req_used = enc->req_used + nc - oc;
    if (enc->req_used > enc->req_peak)
        enc->req_peak = enc->req_used;
    c->held = now;
    pthread_mutex_unlock(&enc->mem_mu);
    return 0;
}


job *occ_srv_job_new(occ_enclave *enc, conn *c, srv_model *mdl)
{
    const occ_model *m = mdl->m;
    size_t head = sizeof(job) + (m->n_inputs + m->n_outputs) * sizeof(void *);
    head = (head + 63) & ~(size_t)63;
    size_t total = head + mdl->job_bytes;
    if (occ_srv_mem_charge(enc, c, (int64_t)total))
        return NULL;
    /* the tensors are not zeroed: the decoder writes every input byte (or
     * fails the request) and the engine every output byte */
    job *j = occ_fault_hit(OCC_FAULT_REQ_ALLOC) ? NULL : malloc(total);
    if (!j) {
        (void)occ_srv_mem_charge(enc, c, -(int64_t)total);
        return NULL;
    }
    memset(j, 0, head);
    j->charged = c;
    j->charge = total;
    j->in = (void **)(j + 1);
    j->out = j->in + m->n_inputs;
    uint8_t *p = (uint8_t *)j + head;
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        j->in[i] = p;
        p += TENSOR_ALIGN(m->tensors[m->inputs[i]].size);
    }
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        j->out[i] = p;
        p += TENSOR_ALIGN(m->tensors[m->outputs[i]].size);
    }
    j->mdl = mdl;
    return j;
}

/* Before the connection it is charged to is released. */
void occ_srv_job_free(occ_enclave *enc, job *j)
{
    if (!j)
        return;
    /* inputs and outputs (contiguous after the header) are the client's data */
    occ_wipe(j->in[0], j->mdl->job_bytes);
    if (j->charged)
        (void)occ_srv_mem_charge(enc, j->charged, -(int64_t)j->charge);
    free(j);
}
