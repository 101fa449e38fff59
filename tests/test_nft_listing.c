/*
 * client/nft_listing.c: nft's durations read and written, a listing's
 * timers aged by a trial (never below 1 ms, never in quotes, counters
 * untouched) and listings compared but for timers and counters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "nft_listing.h"

static struct text_buf text(const char *s)
{
	struct text_buf b = { 0 };

	assert_true(text_buf_add(&b, s, strlen(s)));
	return b;
}

static void parses(const char *s, size_t len, uint64_t ms)
{
	uint64_t got = 12345;

	assert_int_equal(nft_duration_parse(s, &got), len);
	assert_int_equal(got, ms);
}

static void test_parse(void **state)
{
	(void)state;
	parses("1d2h3m4s5ms", 11, 86400000 + 2 * 3600000 + 3 * 60000 + 4000 + 5);
	parses("59s", 3, 59000);
	parses("250ms", 5, 250);
	parses("5m", 2, 300000);	/* minutes: "ms" is read first */
	parses("1h", 2, 3600000);
	parses("59m58s996ms comment \"x\"", 11, 59 * 60000 + 58000 + 996);
	parses("12s,", 3, 12000);
	parses("", 0, 0);
	parses("never", 0, 0);
}

static void test_parse_refuses(void **state)
{
	uint64_t ms;

	(void)state;
	assert_int_equal(nft_duration_parse("5x", &ms), 0);	/* no such unit */
	assert_int_equal(nft_duration_parse("5", &ms), 0);	/* no unit */
	assert_int_equal(nft_duration_parse("3m5", &ms), 0);
}

static void formats(uint64_t ms, const char *want)
{
	char buf[64];
	uint64_t back;

	nft_duration_format(ms, buf, sizeof(buf));
	assert_string_equal(buf, want);
	if (ms) {	/* and nft_duration_parse reads it back */
		assert_int_equal(nft_duration_parse(buf, &back), strlen(want));
		assert_int_equal(back, ms);
	}
}

static void test_format(void **state)
{
	(void)state;
	formats(86400000 + 2 * 3600000 + 3 * 60000 + 4000 + 5, "1d2h3m4s5ms");
	formats(59000, "59s");
	formats(250, "250ms");
	formats(1, "1ms");
	formats(3600000, "1h");
	formats(60001, "1m1ms");
	formats(3 * 86400000ull, "3d");
	formats(0, "");
}

/* Two sets: one of timed elements, one without timeout; a named counter,
 * a rule's counter and a comment that looks like a timer. */
static const char listing[] =
	"table inet filter {\n"
	"\tcounter seen {\n\t\tpackets 5 bytes 300\n\t}\n"
	"\tset knocked {\n\t\ttype ipv4_addr\n\t\tflags timeout\n"
	"\t\telements = { 192.0.2.9 timeout 1h expires 59m58s996ms, "
	"192.0.2.10 timeout 10s expires 3s,\n"
	"\t\t\t     192.0.2.11 timeout 1m expires 5s }\n\t}\n"
	"\tset admins {\n\t\ttype ipv4_addr\n"
	"\t\telements = { 192.0.2.7, 192.0.2.8 }\n\t}\n"
	"\tchain input {\n"
	"\t\tip saddr @admins tcp dport 22 counter packets 3 bytes 120 "
	"accept comment \"knock expires 1h packets 7\"\n"
	"\t}\n}\n";

static void ages(const char *in, uint64_t elapsed_ms, const char *want)
{
	struct text_buf b = text(in), out = { 0 };

	assert_true(nft_listing_age(&b, elapsed_ms, &out));
	assert_non_null(out.p);
	assert_string_equal(out.p, want);
	assert_int_equal(out.len, strlen(want));
	text_buf_free(&b);
	text_buf_free(&out);
}

/* 5 s of trial: 59m58s996ms becomes 59m53s996ms; 3 s and 5 s left, both
 * ran out during it: 1 ms, at once, not the trial's time again. The set
 * without timers, the counters and the comment stay as they are. */
static void test_age(void **state)
{
	static const char want[] =
		"table inet filter {\n"
		"\tcounter seen {\n\t\tpackets 5 bytes 300\n\t}\n"
		"\tset knocked {\n\t\ttype ipv4_addr\n\t\tflags timeout\n"
		"\t\telements = { 192.0.2.9 timeout 1h expires 59m53s996ms, "
		"192.0.2.10 timeout 10s expires 1ms,\n"
		"\t\t\t     192.0.2.11 timeout 1m expires 1ms }\n\t}\n"
		"\tset admins {\n\t\ttype ipv4_addr\n"
		"\t\telements = { 192.0.2.7, 192.0.2.8 }\n\t}\n"
		"\tchain input {\n"
		"\t\tip saddr @admins tcp dport 22 counter packets 3 bytes 120 "
		"accept comment \"knock expires 1h packets 7\"\n"
		"\t}\n}\n";

	(void)state;
	ages(listing, 5000, want);
}

static void test_age_edges(void **state)
{
	(void)state;
	ages(listing, 0, listing);	/* no time passed: the same */
	ages("expires 2s\n", 1999, "expires 1ms\n");
	ages("expires 2s\n", 1998, "expires 2ms\n");
	ages("a expires 1d2h3m4s5ms b", 86400000, "a expires 2h3m4s5ms b");
	ages("elements = { 10.0.0.1 expires 1h }", 1, "elements = { 10.0.0.1 expires 59m59s999ms }");
	/* Not a word of its own, not a duration, or none at all: kept. */
	ages("xexpires 5s", 1000, "xexpires 5s");
	ages("expires never", 1000, "expires never");
	ages("set s { }", 1000, "set s { }");
	ages("", 1000, "");
}

static bool alike(const char *a, const char *b)
{
	struct text_buf ta = text(a), tb = text(b);
	bool r = nft_listing_alike(&ta, &tb);

	text_buf_free(&ta);
	text_buf_free(&tb);
	return r;
}

static void test_alike(void **state)
{
	(void)state;
	assert_true(alike(listing, listing));
	assert_true(alike("counter packets 3 bytes 120 accept",
			  "counter packets 40 bytes 9000 accept"));
	assert_true(alike("{ packets 5 bytes 300 }", "{ packets 0 bytes 0 }"));
	assert_true(alike("10.0.0.1 timeout 1h expires 59m58s996ms }",
			  "10.0.0.1 timeout 1h expires 12m1s }"));
	/* Anything else is a difference: an element gone, a timeout, a port,
	 * a comment (even one that looks like a counter), a word that only
	 * ends like one. */
	assert_false(alike("{ 10.0.0.1 expires 1h, 10.0.0.2 expires 1m }",
			   "{ 10.0.0.1 expires 1h }"));
	assert_false(alike("10.0.0.1 timeout 1h expires 5m",
			   "10.0.0.1 timeout 2h expires 5m"));
	assert_false(alike("tcp dport 22 counter packets 1 bytes 60",
			   "tcp dport 23 counter packets 1 bytes 60"));
	assert_false(alike("comment \"n packets 1\"", "comment \"n packets 2\""));
	assert_false(alike("comment \"ttl expires 1h\"", "comment \"ttl expires 2h\""));
	assert_false(alike("xpackets 5", "xpackets 6"));
	assert_false(alike("quota 10 mbytes", "quota 20 mbytes"));
	assert_false(alike("used 0 bytes x", "used 0 bytes y"));	/* no number */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_age),
		cmocka_unit_test(test_age_edges),
		cmocka_unit_test(test_alike),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
