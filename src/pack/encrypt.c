/* Encrypting a pack's weight chunks (host side, the model owner's tool):
 * docs/pack-format.md, "Encrypted packs"; the cipher is the enclave's own
 * (occ/weights_crypt.h). */
#include <string.h>

#include <openssl/rand.h>

#include "occ/pack.h"
#include "occ/weights_crypt.h"

occ_status occ_pack_encrypt(occ_model *m, uint8_t *data, const uint8_t key[32], occ_error *e)
{
    if (!key)
        return occ_fail(e, OCC_ERR_INVALID, "no weights key");
    if (m->weights_crypt != OCC_WCRYPT_NONE)
        return occ_fail(e, OCC_ERR_INVALID, "the weights are already encrypted");
    /* a fresh pack id per pack: the chunk key is derived from it, so one
     * model key can encrypt many packs without ever reusing a (key, nonce) */
    if (RAND_bytes(m->pack_id, OCC_PACK_ID_SIZE) != 1)
        return occ_fail(e, OCC_ERR_INTERNAL, "no randomness for the pack id");
    occ_wcrypt *c = NULL;
    occ_status s = occ_wcrypt_new(key, m->pack_id, m->key_check, &c, e);
    for (uint32_t i = 0; !s && i < m->n_chunks; i++) {
        occ_chunk *ch = &m->chunks[i];
        if (ch->offset > m->data_size || ch->size > m->data_size - ch->offset)
            s = occ_fail(e, OCC_ERR_INVALID, "chunk %u lies outside the data section", i);
        else
            s = occ_wcrypt_seal(c, i, ch, data + ch->offset, ch->tag, e);
    }
    occ_wcrypt_free(c);
    if (!s)
        m->weights_crypt = OCC_WCRYPT_AES256GCM;
    return s;
}
