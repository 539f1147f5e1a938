/* The policy reader and the client's rules about it: "models" (which model
 * id answers under which name), allow_emulated false by default, and what
 * counts as pinning the enclave and the model. */
#include <string.h>

#include "occ/attest.h"
#include "test.h"

#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B64 "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

static occ_status parse(const char *json, occ_attest_policy *p, occ_error *e)
{
    return occ_attest_policy_parse(json, strlen(json), p, e);
}

static void test_defaults(void)
{
    occ_attest_policy p;
    occ_attest_policy_default(&p);
    CHECK(!p.allow_emulated && !p.allow_debug && !p.allow_missing_collateral);
    CHECK(p.tcb_status_count == 1 && !strcmp(p.accepted_tcb_status[0], "UpToDate"));
    CHECK(!p.model_count && !p.use_model[0]);
    CHECK(parse("{}", &p, NULL) == OCC_OK && !p.allow_emulated);
    CHECK(parse("{\"allow_emulated\": true}", &p, NULL) == OCC_OK && p.allow_emulated);
}

static void test_models(void)
{
    occ_attest_policy p;
    occ_error e = {0};
    CHECK_MSG(parse("{\"models\": {\"fmnist\": \"" A64 "\", \"fmnist-b\": \"" B64 "\"}}", &p, &e) == OCC_OK, "%s",
              e.msg);
    CHECK(p.model_count == 2 && !strcmp(p.model_names[0], "fmnist") && !strcmp(p.model_names[1], "fmnist-b"));
    CHECK(p.model_ids[0][0] == 0xaa && p.model_ids[1][31] == 0xbb);
    /* errors say what is wrong; the policy is left at the defaults */
    const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"models\": [\"" A64 "\"]}", "must be an object"},
        {"{\"models\": {}}", "is empty"},
        {"{\"models\": {\"a\": \"abc\"}}", "64 hex"},
        {"{\"models\": {\"a\": 5}}", "64 hex"},
        {"{\"models\": {\"a b\": \"" A64 "\"}}", "not a model name"},
        {"{\"models\": {\"a/b\": \"" A64 "\"}}", "not a model name"},
        {"{\"models\": {\"\": \"" A64 "\"}}", "not a model name"},
        {"{\"models\": {\"a\": \"" A64 "\", \"a\": \"" B64 "\"}}", "twice"},
        {"{\"model\": {\"a\": \"" A64 "\"}}", "unknown key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        e = (occ_error){0};
        CHECK_MSG(parse(bad[i].json, &p, &e) == OCC_ERR_FORMAT && strstr(e.msg, bad[i].msg), "%zu: %s", i, e.msg);
        CHECK(p.model_count == 0);
    }
    /* at most 16 */
    char big[4096];
    size_t n = (size_t)snprintf(big, sizeof big, "{\"models\": {");
    for (int i = 0; i < 17; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s\"m%d\": \"" A64 "\"", i ? ", " : "", i);
    snprintf(big + n, sizeof big - n, "}}");
    CHECK(parse(big, &p, &e) == OCC_ERR_FORMAT && strstr(e.msg, "more than 16"));
    /* "use_model" is never read from JSON */
    CHECK(parse("{\"use_model\": \"a\"}", &p, NULL) == OCC_ERR_FORMAT);
}

static void test_pinned(void)
{
    occ_attest_policy p;
    char why[200];
    occ_attest_policy_default(&p);
    CHECK(!occ_attest_policy_pinned(&p, why, sizeof why));
    CHECK(strstr(why, "no enclave") && strstr(why, "no model"));
    CHECK(parse("{\"mrenclave\": \"" A64 "\"}", &p, NULL) == OCC_OK);
    CHECK(!occ_attest_policy_pinned(&p, why, sizeof why) && !strstr(why, "no enclave") && strstr(why, "no model"));
    CHECK(parse("{\"mrenclave\": \"" A64 "\", \"model_id\": \"" B64 "\"}", &p, NULL) == OCC_OK);
    CHECK(occ_attest_policy_pinned(&p, why, sizeof why));
    CHECK(parse("{\"mrenclave\": \"" A64 "\", \"models\": {\"x\": \"" B64 "\"}}", &p, NULL) == OCC_OK);
    CHECK(occ_attest_policy_pinned(&p, why, sizeof why));
    /* MRSIGNER alone pins every enclave its key ever signed: isv_prod_id too */
    CHECK(parse("{\"mrsigner\": [\"" A64 "\"], \"model_id\": \"" B64 "\"}", &p, NULL) == OCC_OK);
    CHECK(!occ_attest_policy_pinned(&p, why, sizeof why) && strstr(why, "no enclave"));
    CHECK(parse("{\"mrsigner\": [\"" A64 "\"], \"isv_prod_id\": 0, \"model_id\": \"" B64 "\"}", &p, NULL) == OCC_OK);
    CHECK(occ_attest_policy_pinned(&p, why, sizeof why));
    CHECK(parse("{\"model_id\": \"" B64 "\", \"allow_emulated\": true}", &p, NULL) == OCC_OK);
    CHECK(!occ_attest_policy_pinned(&p, NULL, 0));
}

static void test_apply(void)
{
    /* a verdict with a bound list, and policies over it */
    occ_attest_verdict v;
    memset(&v, 0, sizeof v);
    v.parsed = v.verified = 1;
    v.emulated = 1;
    snprintf(v.tcb_status, sizeof v.tcb_status, "Emulated");
    v.models_bound = 1;
    v.model_count = 2;
    snprintf(v.model_names[0], sizeof v.model_names[0], "a");
    memset(v.model_ids[0], 0xaa, 32);
    snprintf(v.model_names[1], sizeof v.model_names[1], "b");
    memset(v.model_ids[1], 0xbb, 32);
    occ_attest_policy p;
    CHECK(parse("{\"allow_emulated\": true, \"models\": {\"a\": \"" A64 "\", \"b\": \"" B64 "\"}}", &p, NULL) == OCC_OK);
    occ_attest_verdict w = v;
    occ_attest_policy_apply(&p, &w);
    CHECK(w.accepted);
    CHECK(parse("{\"allow_emulated\": true, \"models\": {\"a\": \"" B64 "\", \"b\": \"" A64 "\"}}", &p, NULL) == OCC_OK);
    w = v;
    occ_attest_policy_apply(&p, &w);
    CHECK(!w.accepted && w.reason_count == 2);
    /* emulated: refused by default, whatever else holds */
    CHECK(parse("{\"models\": {\"a\": \"" A64 "\"}}", &p, NULL) == OCC_OK);
    w = v;
    occ_attest_policy_apply(&p, &w);
    CHECK(!w.accepted && occ_verdict_has_reason(&w, "allow_emulated is false"));
    /* no list (a quote, or another stack's certificate) */
    CHECK(parse("{\"allow_emulated\": true, \"models\": {\"a\": \"" A64 "\"}}", &p, NULL) == OCC_OK);
    w = v;
    w.models_bound = 0;
    w.model_count = 0;
    occ_attest_policy_apply(&p, &w);
    CHECK(!w.accepted && occ_verdict_has_reason(&w, "does not carry"));
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_models);
    RUN(test_pinned);
    RUN(test_apply);
    TEST_DONE();
}
