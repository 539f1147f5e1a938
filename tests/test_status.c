#include "occ/status.h"
#include "test.h"

static void test_parse_size(void)
{
    unsigned long long v = 0;
    CHECK(occ_parse_size("93M", &v) == OCC_OK && v == 93ull << 20);
    CHECK(occ_parse_size("32MiB", &v) == OCC_OK && v == 32ull << 20);
    CHECK(occ_parse_size("512K", &v) == OCC_OK && v == 512ull << 10);
    CHECK(occ_parse_size("1G", &v) == OCC_OK && v == 1ull << 30);
    CHECK(occ_parse_size("4096", &v) == OCC_OK && v == 4096);
    CHECK(occ_parse_size("", &v) == OCC_ERR_INVALID);
    CHECK(occ_parse_size("12Q", &v) == OCC_ERR_INVALID);
    CHECK(occ_parse_size("-5", &v) == OCC_ERR_INVALID);
    CHECK(occ_parse_size("99999999999999999999G", &v) == OCC_ERR_INVALID);
    CHECK(occ_parse_size("18446744073709551615G", &v) == OCC_ERR_INVALID);
}

static void test_fail_prefix(void)
{
    occ_error e = {0};
    CHECK(occ_fail(&e, OCC_ERR_SHAPE, "bad dim %d", 3) == OCC_ERR_SHAPE);
    CHECK(occ_error_prefix(&e, "node %s", "conv1") == OCC_ERR_SHAPE);
    CHECK(strcmp(e.msg, "node conv1: bad dim 3") == 0);
}

int main(void)
{
    RUN(test_parse_size);
    RUN(test_fail_prefix);
    TEST_DONE();
}
